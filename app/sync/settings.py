"""The sync feature's settings, read from the App's environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import seconds, text

#: the environment variables this feature reads
NAMES = ("CELERY_BROKER_URL", "AKENEO_SYNC_INTERVAL")


@dataclass(frozen=True)
class SyncSettings:
    """Where sync jobs wait for a worker, and how often every catalog is synced."""

    #: None: the App's own database (kombu's SQL transport)
    broker_url: str | None = None
    #: seconds between two periodic syncs of every connected PIM (0: no periodic sync)
    interval: int = 900

    @classmethod
    def from_env(cls, env: Mapping[str, Any]) -> SyncSettings:
        """From the App's raw settings; ConfigError with a sentence when one is wrong."""
        return cls(
            broker_url=text(env, "CELERY_BROKER_URL"),
            interval=seconds(env, "AKENEO_SYNC_INTERVAL", 900),
        )
