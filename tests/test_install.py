"""The lock installs as it is: the check that `make install` runs after pip says what differs.

The whole guard (fresh venvs, no pip cache, both locks) is `make check-install`, which CI runs;
these tests show that its check fails on each fault it is there to catch, and passes on this venv.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from launcher import ROOT
from tools.check_install import faults, pins

LOCK = """\
flask==3.1.3 \\
    --hash=sha256:aaaa
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:bbbb
cachecontrol==0.14.4 \\
    --hash=sha256:cccc
    # via pip-audit
"""


def test_the_lock_pins_what_its_markers_allow_on_this_python(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK)
    pinned = pins(lock)
    assert pinned["flask"] == "3.1.3" and pinned["cachecontrol"] == "0.14.4"
    assert ("colorama" in pinned) == (sys.platform == "win32")


def test_a_newer_release_a_missing_package_and_a_stranger_are_each_named() -> None:
    pinned = {"flask": "3.1.3", "cachecontrol": "0.14.4", "jinja2": "3.1.6"}
    present = {"flask": "3.1.3", "cachecontrol": "0.15.0", "rich": "15.0.0", "pip": "23.2.1"}
    assert faults(pinned, present) == [
        "cachecontrol is 0.15.0, the lock pins 0.14.4",
        "jinja2==3.1.6 is pinned but not installed",
        "rich==15.0.0 is installed but the lock does not name it",
    ]


def test_the_venvs_bootstrap_must_match_the_lock_when_the_lock_names_it() -> None:
    assert faults({"pip": "26.3"}, {"pip": "23.2.1", "setuptools": "65.5.0"}) == [
        "pip is 23.2.1, the lock pins 26.3"
    ]


def test_this_venv_holds_exactly_what_the_dev_lock_pins() -> None:
    checked = subprocess.run(
        [sys.executable, "tools/check_install.py", "requirements-dev.lock"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_make_install_installs_the_lock_as_it_is_and_checks_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --disable-pip-version-check --no-deps --require-hashes" in makefile
    assert "$(BIN)/python tools/check_install.py $(LOCK_FILE)" in makefile
    assert "make check-install" in (ROOT / ".ci" / "run").read_text()
