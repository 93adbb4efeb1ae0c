"""The container's HEALTHCHECK: `python app/healthcheck.py` exits 0 when /healthz answers 200.

Run as a script, it imports nothing of the App (no Flask start-up every 30 s), and it asks the
address gunicorn listens on: BIND, else 0.0.0.0:PORT (default 8000), as gunicorn.conf.py reads it.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping


def health_url(environ: Mapping[str, str]) -> str:
    """The /healthz URL on loopback for the address gunicorn binds (first of BIND's)."""
    bind = environ.get("BIND") or f"0.0.0.0:{environ.get('PORT', '8000')}"
    host, _, port = bind.split(",")[0].strip().rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    """0 when the App answers /healthz with 200 within 4 s, 1 otherwise."""
    try:
        with urllib.request.urlopen(health_url(os.environ), timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
