"""`make run`: the App with a local PIM when nothing is configured, the App alone otherwise."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from dotenv import dotenv_values

from app.config import LOCAL_SETUP_FILE
from app.errors import AppError
from app.logs import configure_logging

from . import (
    ROOT,
    PortBusy,
    bind,
    die_with_parent,
    has_worker,
    reload,
    start_local,
    start_worker,
    stop_process,
    write_settings,
)

# the local PIM's memory between two `make run`s (`make reset-pim` forgets it)
STATE_FILE = ROOT / "instance" / "devpim.json"
# the local set-up's settings, for the CLI in another shell (app/config.py reads it)
LOCAL_SETUP = ROOT / "instance" / LOCAL_SETUP_FILE


def main() -> None:
    """Parse the ports, start the servers, print where to click, run until Ctrl+C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m launcher", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--pim-port", type=int, default=int(os.environ.get("PIM_PORT", "8001")))
    parser.add_argument(
        "--no-reload", action="store_true", help="Do not restart when a file of the App changes."
    )
    args = parser.parse_args()
    if not args.no_reload and not reload.is_child():
        sys.exit(reload.run_children(sys.argv[1:]))
    variable = {args.port: "PORT", args.pim_port: "PIM_PORT"}
    try:
        serve(args.port, args.pim_port, watch=not args.no_reload)
    except AppError as error:  # a wrong setting: one line, as gunicorn and flask print it
        sys.exit(f"Error: {error.message}")
    except PortBusy as busy:
        name = variable.get(busy.port, "PORT")
        sys.exit(
            f"Error: port {busy.port} is already in use (another `make run`?). Stop it, or "
            f"choose another port: make run {name}={busy.port + 10}"
        )


def serve(port: int, pim_port: int, *, watch: bool = False) -> None:
    """The App (alone when AKENEO_CLIENT_ID is set, else with a local PIM) until stopped (or,
    with `watch`, until a file of the App changes: SystemExit(reload.RELOAD))."""
    seen = reload.snapshot(ROOT) if watch else None  # before the banner says "ready"
    # quiet unless asked: the banner stays in sight (LOG_LEVEL=INFO shows every request, job
    # and PIM call of the App, the local PIM and the worker)
    level = os.environ.get("LOG_LEVEL", "WARNING")
    configure_logging(level)
    for name in ("", "werkzeug"):  # werkzeug sets its own logger to INFO when it is unset
        logging.getLogger(name).setLevel(level.upper())
    # `kill` (SIGTERM, as from a supervisor) stops as Ctrl+C does; and when `make` itself is
    # killed, the kernel sends us SIGTERM too (Linux): no server is left behind
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if sys.platform == "linux":
        die_with_parent()

    if os.environ.get("AKENEO_CLIENT_ID") or dotenv_values(".env").get("AKENEO_CLIENT_ID"):
        # real PIM mode: only the App, configured from the environment and .env
        from app import create_app

        server = bind(port)
        server.app = create_app()
        server.app.jinja_env.auto_reload = True  # an edited template shows with no restart
        # configured as the App: the environment and .env
        has = has_worker(server.app)
        worker = start_worker(server.app, {}, ROOT / "instance") if has else None
        print(  # noqa: T201
            f"\n  The App runs at http://127.0.0.1:{port}: open it for the URLs to register."
            + (" A sync worker runs beside it." if worker else "")
            + "\n"
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            _wait(seen)
        finally:
            server.shutdown()
            server.server_close()
            if worker:
                stop_process(worker)
        return

    setup = start_local(
        app_port=port,
        pim_ports=[pim_port],
        app_config={"LOG_LEVEL": level},
        state_file=STATE_FILE,
        worker_dir=ROOT / "instance",
    )
    write_settings(LOCAL_SETUP, setup.config)
    connected = setup.servers[1].app.extensions["devpim"].app.granted is not None
    print(  # noqa: T201 - the one line a newcomer needs, and the CLI for later
        f"\n  Local PIM: open {setup.pim_urls[0]} and click "
        f"{'Open app (the App is connected)' if connected else 'Connect'} "
        f"(the App runs at {setup.app_url}"
        f"{', its sync worker beside it' if setup.worker else ''}). Ctrl+C stops all.\n"
        f"  From another shell: .venv/bin/flask --app app akeneo call /api/rest/v1/channels "
        f"--pim {setup.pim_urls[0]}\n"
    )
    try:
        _wait(seen)
    finally:
        setup.stop()


def _wait(seen: dict[str, float] | None) -> None:
    """Until Ctrl+C or SIGTERM (or, given the files' times `seen`, until one of them changes)."""
    try:
        if seen is not None:
            reload.watch(ROOT, seen)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
