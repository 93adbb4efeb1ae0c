"""`make run`: the App with a local PIM when nothing is configured, the App alone otherwise."""

from __future__ import annotations

import argparse
import logging
import os
import time

from dotenv import dotenv_values

from app.logs import configure_logging

from .launch import QuietHandler, start_local


def main() -> None:
    """Parse the ports, start the servers, print where to click, run until Ctrl+C."""
    parser = argparse.ArgumentParser(prog="python -m devpim", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--pim-port", type=int, default=int(os.environ.get("PIM_PORT", "8001")))
    args = parser.parse_args()
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    logging.getLogger().setLevel(logging.INFO)  # the servers' request lines too

    if os.environ.get("AKENEO_CLIENT_ID") or dotenv_values(".env").get("AKENEO_CLIENT_ID"):
        # real PIM mode: only the App, configured from the environment and .env
        from werkzeug.serving import run_simple

        from app import create_app

        print(  # noqa: T201
            f"\n  The App runs at http://127.0.0.1:{args.port}: open it for the URLs to register.\n"
        )
        run_simple(
            "127.0.0.1", args.port, create_app(), threaded=True, request_handler=QuietHandler
        )
        return

    setup = start_local(app_port=args.port, pim_ports=[args.pim_port])
    print(  # noqa: T201 - the one line a newcomer needs
        f"\n  Local PIM: open {setup.pim_urls[0]} and click Connect "
        f"(the App runs at {setup.app_url}). Ctrl+C stops both.\n"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        setup.stop()


if __name__ == "__main__":
    main()
