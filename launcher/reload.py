"""`make run` restarts the App when its code changes (as `flask run --debug` does): a parent
process runs the servers in a child, and starts it anew each time the child exits with RELOAD.
The child watches the files and stops itself cleanly (the local PIM's state saved, the worker
stopped) before it exits. Templates and static files need no restart: Flask reads a template
again when it changed (`start_local` turns that on), and serves static files from the disk.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

RELOAD = 3  # the child's exit code that asks for a new child
CHILD = "LAUNCHER_CHILD"  # set in the child's environment
WATCHED = ("app", "templates", "static", "devpim", "launcher")
SUFFIXES = {".py", ".json"}  # code, and the product schema read at start


def is_child() -> bool:
    """True in the process that runs the servers (False in the one that restarts it)."""
    return os.environ.get(CHILD) == "1"


def run_children(argv: list[str]) -> int:
    """Run `python -m launcher argv` again and again while it asks for a reload; its exit code.

    Ctrl+C reaches the child directly (it is in this terminal's process group) and a SIGTERM to
    this process is passed on to it: the child always stops itself, saving what it must.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        child = subprocess.Popen(
            [sys.executable, "-m", "launcher", *argv],
            env={**os.environ, CHILD: "1"},
            # the child must not inherit this process's SIG_IGN for SIGINT (exec keeps it)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        signal.signal(signal.SIGTERM, lambda *_, child=child: child.terminate())
        code = child.wait()
        if code != RELOAD:
            return code


def snapshot(root: Path) -> dict[str, float]:
    """The watched files' modification times, to compare with later ones in watch()."""
    return {str(path): path.stat().st_mtime for path in _files(root)}


def watch(root: Path, seen: dict[str, float], interval: float = 1.0) -> None:
    """Return (by SystemExit(RELOAD)) once a watched file changes, appears or goes since `seen`.

    `seen` is taken before the servers start: a file saved while they start counts too.
    """
    while True:
        time.sleep(interval)
        now = snapshot(root)
        if now != seen:
            changed = sorted(set(now.items()) ^ set(seen.items()))
            log.warning("%s changed: restarting", os.path.relpath(changed[0][0], root))
            raise SystemExit(RELOAD)


def _files(root: Path) -> Iterator[Path]:
    for folder in WATCHED:
        for path in (root / folder).rglob("*"):
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                yield path
