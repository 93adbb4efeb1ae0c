"""`make bench`: what the App costs on top of the PIM's own round trips (see bench/__main__.py)."""

from __future__ import annotations

import secrets
from pathlib import Path

from launcher import HOST


def app_env(client_id: str, secret: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The benchmarked App's settings: registered in the local PIMs, its database in `workdir`,
    quiet logs (a log line per request would be measured too)."""
    return {
        "AKENEO_CLIENT_ID": client_id,
        "AKENEO_CLIENT_SECRET": secret,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "AKENEO_PIM_ALLOWED_HOSTS": HOST,
        "AKENEO_PIM_ALLOW_HTTP": "1",
        "ACCESS_LOG": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
