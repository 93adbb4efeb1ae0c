"""Check that this Python holds exactly what a lock file pins: `python tools/check_install.py LOCK`.

Run with the venv's own Python after `pip install --no-deps --require-hashes -r LOCK`. It fails
(exit 1, one line per fault) when `pip check` finds a broken requirement, when a package the lock
pins for this platform is missing or at another version, or when a package the lock does not name
is installed. Only the venv's own bootstrap packages (pip, setuptools, wheel) may be unlisted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

# `name==version` then an optional `; marker`, as uv and pip-compile write them
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*(.+?))?\s*\\?$")
BOOTSTRAP = {"pip", "setuptools", "wheel"}  # what `python -m venv` may put there first


def pins(lock: Path) -> dict[str, str]:
    """The lock's `name: version` for the packages whose markers hold on this Python."""
    pinned: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            pinned[canonicalize_name(name)] = version
    return pinned


def installed() -> dict[str, str]:
    """This Python's installed distributions, `name: version`."""
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }


def faults(pinned: dict[str, str], present: dict[str, str]) -> list[str]:
    """What differs between the lock and this Python, one sentence each."""
    found = []
    for name, version in sorted(pinned.items()):
        if name not in present:
            found.append(f"{name}=={version} is pinned but not installed")
        elif present[name] != version:
            found.append(f"{name} is {present[name]}, the lock pins {version}")
    for name in sorted(present.keys() - pinned.keys() - BOOTSTRAP):
        found.append(f"{name}=={present[name]} is installed but the lock does not name it")
    return found


def main(argv: list[str]) -> int:
    """Check this Python against the lock named in argv; print the faults; 0 when none."""
    if len(argv) != 1:
        print("usage: python tools/check_install.py LOCK_FILE", file=sys.stderr)  # noqa: T201
        return 2
    lock = Path(argv[0])
    found = faults(pins(lock), installed())
    checked = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0:
        found.append("pip check: " + " ".join(checked.stdout.split()))
    for fault in found:
        print(f"{lock}: {fault}", file=sys.stderr)  # noqa: T201
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
