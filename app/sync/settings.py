"""The sync feature's settings, read from the App's environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import seconds, text
from ..errors import ConfigError

#: the environment variables this feature reads
NAMES = ("CELERY_BROKER_URL", "AKENEO_SYNC_INTERVAL", "AKENEO_SYNC_LEASE", "AKENEO_SYNC_SWEEP")


@dataclass(frozen=True)
class SyncSettings:
    """Where sync jobs wait for a worker, and how often every catalog is synced."""

    #: None: the App's own database (kombu's SQL transport)
    broker_url: str | None = None
    #: seconds between two periodic syncs of every connected PIM (0: no periodic sync)
    interval: int = 900
    #: seconds after which a run whose worker stopped renewing its lease goes to another worker
    lease: int = 20
    #: seconds between two sweeps (runs and changes nobody holds are queued again)
    sweep: int = 15

    @classmethod
    def from_env(cls, env: Mapping[str, Any]) -> SyncSettings:
        """From the App's raw settings; ConfigError with a sentence when one is wrong."""
        return cls(
            broker_url=text(env, "CELERY_BROKER_URL"),
            interval=seconds(env, "AKENEO_SYNC_INTERVAL", 900),
            lease=_between(env, "AKENEO_SYNC_LEASE", 20, 4, 600),
            sweep=_between(env, "AKENEO_SYNC_SWEEP", 15, 1, 600),
        )


def _between(env: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = text(env, name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be a number of seconds from {low} to {high}, not {raw!r}.")
    return int(raw)
