"""A wrong setting at start is one clear line and exit code 1, for every way the App starts:
the real commands, run in a subprocess as a newcomer runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from launcher import HOST, ROOT, free_port
from tests.pims import SECRET_KEY

pytestmark = pytest.mark.server

COMMANDS = {
    "flask": [sys.executable, "-m", "flask", "--app", "app", "akeneo", "connections"],
    "gunicorn": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
    "make run": [sys.executable, "-m", "launcher"],
}


def start(command: list[str], tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKENEO_", "DATABASE_URL"))}
    env |= {
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "BIND": f"{HOST}:{free_port()}",
        "PORT": str(free_port()),
        "PIM_PORT": str(free_port()),
        **environ,
    }
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of DEBUG, INFO"),
        ("AKENEO_SCOPES", "read_prodcuts", "AKENEO_SCOPES has scopes the PIM does not know"),
        ("TOKEN_ENCRYPTION_KEY", "nope", "TOKEN_ENCRYPTION_KEY key #1 is not a Fernet key"),
        ("DATABASE_URL", "postgres://u:pw@127.0.0.1:1/x", "cannot be used: connection failed"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL is not a database URL this App can use"),
    ],
)
def test_a_wrong_setting_is_one_line_and_exit_1(
    tmp_path: Path, command: str, setting: str, value: str, said: str
) -> None:
    started = start(COMMANDS[command], tmp_path, **{setting: value})
    assert started.returncode == 1
    assert "Traceback" not in started.stderr
    lines = [line for line in started.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and said in lines[-1], started.stderr
    assert ":pw@" not in started.stderr  # a password in the URL is never printed


@pytest.mark.parametrize("which", ["PORT", "PIM_PORT"])
def test_a_busy_port_names_the_port_and_the_variable(tmp_path: Path, which: str) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = start(COMMANDS["make run"], tmp_path, **{which: str(port)})
    assert started.returncode == 1
    assert started.stderr.strip() == (
        f"Error: port {port} is already in use (another `make run`?). Stop it, or choose "
        f"another port: make run {which}={port + 10}"
    )


def test_make_run_restarts_the_app_when_its_code_changes_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKENEO_", "DATABASE_URL"))}
    env |= {
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "AKENEO_CLIENT_ID": "id",  # the App alone: no local PIM state to keep
        "AKENEO_CLIENT_SECRET": "secret",
        "PORT": str(port),
    }
    output = tmp_path / "out.log"
    with output.open("wb") as sink:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "launcher"], cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    banner = f"The App runs at http://127.0.0.1:{port}"

    def started(times: int) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if output.read_text(errors="replace").count(banner) >= times:
                return True
            time.sleep(0.2)
        return False

    try:
        assert started(1), output.read_text()
        os.utime(ROOT / "templates" / "base.html")  # a template: Flask reads it again, no restart
        time.sleep(2.5)
        assert output.read_text(errors="replace").count(banner) == 1
        code = ROOT / "app" / "routes.py"
        os.utime(code)  # saved again in an editor: the same text, a new time
        assert started(2), output.read_text()  # a new App, with what the file says now
        assert "routes.py changed: restarting" in output.read_text()
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(30) == 0
        assert "Traceback" not in output.read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()  # reaped: an unwaited Popen warns when collected, in a later test
