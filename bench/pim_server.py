"""The local PIM alone in its own process, so the benchmark's PIM does not share the App's CPU
accounting: `python -m bench.pim_server --port P --app-url U --client-id I --client-secret S`
[--products N] [--connection ID:SECRET:USER:PASSWORD]."""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import make_server

from devpim import create_devpim
from launcher import HOST, QuietHandler


def main() -> None:
    """Serve one local PIM on loopback until killed."""
    parser = argparse.ArgumentParser()
    for name in ("--port", "--app-url", "--client-id", "--client-secret"):
        parser.add_argument(name, required=True)
    parser.add_argument("--products", default="60", help="how many products it holds")
    parser.add_argument("--connection", help="CLIENT_ID:SECRET:USERNAME:PASSWORD of a connection")
    parser.add_argument("--latency", default="0", help="seconds each API call takes")
    parser.add_argument("--max-in-flight", default="", help="API calls at once per token")
    args = parser.parse_args()
    connection = dict(
        zip(
            (
                "CONNECTION_CLIENT_ID",
                "CONNECTION_SECRET",
                "CONNECTION_USERNAME",
                "CONNECTION_PASSWORD",
            ),
            (args.connection or "").split(":") if args.connection else (),
            strict=False,
        )
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    pim_url = f"http://{HOST}:{args.port}"
    pim = create_devpim(
        {
            "PIM_URL": pim_url,
            "APP_CLIENT_ID": args.client_id,
            "APP_CLIENT_SECRET": args.client_secret,
            "APP_ACTIVATE_URL": f"{args.app_url}/activate",
            "APP_CALLBACK_URL": f"{args.app_url}/callback",
            "PRODUCT_COUNT": args.products,
            "PIM_LATENCY": args.latency,
            "PIM_MAX_IN_FLIGHT": args.max_in_flight,
            **connection,
        }
    )
    make_server(
        HOST, int(args.port), pim, threaded=True, request_handler=QuietHandler
    ).serve_forever()


if __name__ == "__main__":
    main()
