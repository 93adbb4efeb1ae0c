"""Where a PIM's sync stands, as the pages, the status endpoint and the CLI tell it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
ACTIVE = (QUEUED, RUNNING)
#: a run queued for longer than this names the worker command: perhaps none runs
NO_WORKER_YET = timedelta(seconds=10)


@dataclass(frozen=True)
class SyncStatus:
    """What the pages show of a PIM's sync."""

    state: str
    catalog_id: str  # the catalog of the current (or last) run
    queued_at: datetime
    full: bool
    phase: str
    total: int
    done: int
    message: str | None
    last_finished_at: datetime | None
    last_catalog_id: str | None
    last_seconds: int | None
    last_done: int | None
    last_removed: int | None
    held: int = 0  # products the copy holds

    def of_catalog(self, catalog_id: str | None) -> SyncStatus | None:
        """This status when it is of `catalog_id` (a catalog made again after a disconnect has a
        new id: the old catalog's runs are no news of it), else None."""
        return self if catalog_id is not None and self.catalog_id == catalog_id else None

    @property
    def active(self) -> bool:
        """True while a run is queued or running."""
        return self.state in ACTIVE

    def has_copy_of(self, catalog_id: str | None) -> bool:
        """True when a run of this catalog finished: the copy can be read instead of the PIM.

        A catalog made again (after a disconnect) has a new id: its copy starts empty."""
        return self.last_finished_at is not None and self.last_catalog_id == catalog_id

    def as_json(self) -> dict[str, Any]:
        """For the status endpoint that the connected page polls."""
        return {
            "active": self.active,
            "state": self.state,
            "full": self.full,
            "phase": self.phase,
            "total": self.total,
            "done": self.done,
            "message": self.message,
            "last_finished_at": self.last_finished_at.isoformat()
            if self.last_finished_at
            else None,
            "last_seconds": self.last_seconds,
            "last_done": self.last_done,
            "last_removed": self.last_removed,
            "held": self.held,
        }


def describe(sync: SyncStatus | None) -> str:
    """The sync's state in one sentence, for the page and its progress bar."""
    if sync is None:
        return "Not synced yet."
    if sync.state == QUEUED:
        if datetime.now(UTC) - sync.queued_at < NO_WORKER_YET:
            return "Sync queued: a worker takes it in a moment…"
        return (
            "Sync queued, and no worker has taken it yet: is one running "
            "(celery -A app.sync.make_celery worker)?"
        )
    if sync.state == RUNNING and sync.phase == "uuids":
        return f"Syncing: counting the catalog's products ({sync.total} so far)…"
    if sync.state == RUNNING and sync.phase in ("recheck", "checked"):
        return "Syncing: reading the catalog's selection once more before removing products…"
    if sync.state == RUNNING:
        if sync.full:
            return f"Syncing: {sync.done} of {sync.total} products read…"
        return f"Syncing: {sync.done} changed products read…"
    last = ""
    if sync.last_finished_at and not sync.full and not sync.last_done and not sync.last_removed:
        last = (
            f"Up to date: {sync.held} products, checked {sync.last_finished_at:%Y-%m-%d %H:%M} "
            "UTC (no product changed since the sync before)."
        )
    elif sync.last_finished_at:
        read = "products read" if sync.full else "changed products read"
        last = (
            f"Last sync finished {sync.last_finished_at:%Y-%m-%d %H:%M:%S} UTC in "
            f"{sync.last_seconds} s: {sync.last_done} {read}, {sync.last_removed} removed; the "
            f"copy holds {sync.held} products."
        )
    if sync.state == FINISHED:
        return f"{last} {sync.message or ''}".strip()  # with the products it could not copy
    return f"{sync.message} {last}".strip()


def progress(sync: SyncStatus | None) -> tuple[int, int] | None:
    """(done, total) for a bar that moves; None when the end is not known yet."""
    if sync and sync.state == RUNNING and sync.phase == "products" and sync.full:
        return min(sync.done, sync.total), max(sync.total, 1)
    return None
