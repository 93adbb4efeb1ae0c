"""The App's copy of each PIM's catalog, and where each PIM's sync stands.

One row per PIM in `catalog_syncs`: the run in progress (its phase, its cursor, its counts, the
lease of the worker running it) and the last one that finished. One row per product in
`synced_products`: the mapped values as JSON. Every step of a sync writes its page and its cursor
in one transaction, guarded by the lease: a worker killed half way loses nothing, and two
workers never run one PIM's sync at once, whatever the broker.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .store import Base, _aware, _now

LEASE = timedelta(seconds=20)  # a worker that has not renewed its lease for this long is gone
QUEUE_GRACE = timedelta(seconds=60)  # a queued run that no worker took by then is queued again

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
ACTIVE = (QUEUED, RUNNING)


class SyncRow(Base):
    """Where one PIM's sync stands: the current (or last) run, and the last finished one."""

    __tablename__ = "catalog_syncs"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    full: Mapped[bool] = mapped_column(Boolean)  # this run reads every product
    phase: Mapped[str] = mapped_column(String(16), default="uuids")  # uuids, then products
    cursor: Mapped[str | None] = mapped_column(Text)  # the next page to read, None: from the start
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # updated_after
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    total: Mapped[int] = mapped_column(Integer, default=0)  # products in the catalog
    done: Mapped[int] = mapped_column(Integer, default=0)  # products read by this run
    message: Mapped[str | None] = mapped_column(Text)  # why it stopped or failed, in plain words
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the start of the last run that finished: the next run reads products updated after it
    synced_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_catalog_id: Mapped[str | None] = mapped_column(String(64))  # what the copy holds
    last_seconds: Mapped[int | None] = mapped_column(Integer)
    last_done: Mapped[int | None] = mapped_column(Integer)
    last_removed: Mapped[int | None] = mapped_column(Integer)


class SyncedProductRow(Base):
    """One product of a PIM's catalog as the App last read it (its mapped values)."""

    __tablename__ = "synced_products"
    __table_args__ = (Index("ix_synced_products_run", "pim_url", "catalog_id", "seen_run"),)

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    data: Mapped[str] = mapped_column(Text)  # the mapped product, as JSON
    seen_run: Mapped[str] = mapped_column(String(32))  # the last run that found it selected
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class SyncStatus:
    """What the pages show of a PIM's sync."""

    state: str
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
        }


@dataclass(frozen=True)
class Run:
    """A run as a worker holding its lease sees it."""

    pim_url: str
    catalog_id: str
    run_id: str
    token: str
    full: bool
    phase: str
    cursor: str | None
    since: datetime | None


class LeaseLost(Exception):
    """Another worker took the run over (this one was too slow to renew its lease)."""


class SyncStore:
    """The sync's rows, over the App's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- what pages ask -------------------------------------------------------------------------

    def status(self, pim_url: str) -> SyncStatus | None:
        """The PIM's sync, or None when it never ran."""
        with self.engine.begin() as db:
            row = db.execute(select(SyncRow).where(SyncRow.pim_url == pim_url)).first()
        if row is None:
            return None
        r = row._mapping
        return SyncStatus(
            state=r["state"],
            full=r["full"],
            phase=r["phase"],
            total=r["total"],
            done=r["done"],
            message=r["message"],
            last_finished_at=_aware_or_none(r["last_finished_at"]),
            last_catalog_id=r["last_catalog_id"],
            last_seconds=r["last_seconds"],
            last_done=r["last_done"],
            last_removed=r["last_removed"],
        )

    def products(
        self, pim_url: str, catalog_id: str, *, limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        """A page of the local copy, by uuid as the PIM sorts them (`after`: the last uuid)."""
        query = (
            select(SyncedProductRow.data)
            .where(SyncedProductRow.pim_url == pim_url, SyncedProductRow.catalog_id == catalog_id)
            .order_by(SyncedProductRow.uuid)
            .limit(limit)
        )
        if after:
            query = query.where(SyncedProductRow.uuid > after)
        with self.engine.begin() as db:
            return [json.loads(data) for (data,) in db.execute(query)]

    # -- starting a run -------------------------------------------------------------------------

    def request(self, pim_url: str, catalog_id: str, *, full: bool) -> str | None:
        """Queue a run for the PIM; its run id, or None when one is queued or running already.

        A run that failed (the PIM down, say) is taken up again where it stopped; otherwise the
        run is incremental when an earlier one finished for this catalog, full if not.
        """
        now = _now()
        with self.engine.begin() as db:
            row = db.execute(select(SyncRow).where(SyncRow.pim_url == pim_url)).first()
            if row is None:
                run_id = _run_id()
                try:
                    with db.begin_nested():
                        first = _fresh_run(catalog_id, run_id, True, now)
                        db.execute(insert(SyncRow).values(pim_url=pim_url, **first))
                except IntegrityError:
                    return None  # another request queued the first run meanwhile
                return run_id
            r = row._mapping
            if r["state"] in ACTIVE:
                return None
            resume = r["state"] == FAILED and r["catalog_id"] == catalog_id and not full
            if resume:
                values: dict[str, Any] = {"state": QUEUED, "queued_at": now, "message": None}
                run_id = r["run_id"]
            else:
                same_catalog = r["catalog_id"] == catalog_id and r["synced_since"] is not None
                run_id = _run_id()
                values = _fresh_run(catalog_id, run_id, full or not same_catalog, now)
                if not values["full"]:
                    values["since"] = r["synced_since"]
            moved = db.execute(
                update(SyncRow)
                .where(SyncRow.pim_url == pim_url, SyncRow.state.not_in(ACTIVE))
                .values(**values)
            ).rowcount
            return run_id if moved else None

    def to_requeue(self) -> list[tuple[str, str]]:
        """(pim_url, run_id) of the runs no live worker holds: their worker died, or no worker
        took the job (a broker that lost it). The sweep queues them again."""
        now = _now()
        waited_too_long = (SyncRow.state == QUEUED) & (SyncRow.queued_at < now - QUEUE_GRACE)
        with self.engine.begin() as db:
            rows = db.execute(
                select(SyncRow.pim_url, SyncRow.run_id).where(
                    or_(
                        (SyncRow.state == RUNNING)
                        & (SyncRow.lease_until.is_(None) | (SyncRow.lease_until < now)),
                        waited_too_long,
                    )
                )
            ).all()
            # queued again now: the next sweep waits for the grace period again
            db.execute(update(SyncRow).where(waited_too_long).values(queued_at=now))
        return [(str(p), str(r)) for p, r in rows]

    # -- running it (the worker) ----------------------------------------------------------------

    def acquire(self, pim_url: str, run_id: str, token: str | None = None) -> Run | None:
        """Take the run's lease: free, expired, or already this job's (`token`); else None."""
        now = _now()
        new_token = token or secrets.token_hex(16)
        free = SyncRow.lease_until.is_(None) | (SyncRow.lease_until < now)
        if token:
            free = free | (SyncRow.lease_token == token)
        with self.engine.begin() as db:
            taken = db.execute(
                update(SyncRow)
                .where(
                    SyncRow.pim_url == pim_url,
                    SyncRow.run_id == run_id,
                    SyncRow.state.in_(ACTIVE),
                    free,
                )
                .values(
                    state=RUNNING,
                    lease_token=new_token,
                    lease_until=now + LEASE,
                    started_at=func.coalesce(SyncRow.started_at, now),
                )
            ).rowcount
            if not taken:
                return None
            r = db.execute(select(SyncRow).where(SyncRow.pim_url == pim_url)).one()._mapping
        return Run(
            pim_url=pim_url,
            catalog_id=r["catalog_id"],
            run_id=run_id,
            token=new_token,
            full=r["full"],
            phase=r["phase"],
            cursor=r["cursor"],
            since=_aware_or_none(r["since"]),
        )

    def renew(self, run: Run) -> None:
        """Keep the lease for another LEASE; LeaseLost when another worker took it."""
        with self.engine.begin() as db:
            self._guarded(db, run, lease_until=_now() + LEASE)

    def save_uuids(self, run: Run, uuids: list[str], cursor: str | None) -> None:
        """One page of the catalog's uuids: mark those the copy holds as still selected, count
        them, save the cursor (None: the last page, the products come next)."""
        with self.engine.begin() as db:
            if uuids:
                db.execute(
                    update(SyncedProductRow)
                    .where(*_of(run), SyncedProductRow.uuid.in_(uuids))
                    .values(seen_run=run.run_id)
                )
            done = {"phase": "products", "cursor": None} if cursor is None else {"cursor": cursor}
            self._guarded(db, run, total=SyncRow.total + len(uuids), **done)

    def save_products(
        self, run: Run, products: Iterable[Mapping[str, Any]], cursor: str | None
    ) -> None:
        """One page of mapped products: replace their rows, count them, save the cursor."""
        now = _now()
        rows = [
            {
                "pim_url": run.pim_url,
                "catalog_id": run.catalog_id,
                "uuid": str(product["uuid"]),
                "data": json.dumps(product, ensure_ascii=False, separators=(",", ":")),
                "seen_run": run.run_id,
                "synced_at": now,
            }
            for product in products
        ]
        with self.engine.begin() as db:
            # replace, not insert: a page read again after a crash changes nothing
            if rows:
                uuids = [row["uuid"] for row in rows]
                db.execute(
                    delete(SyncedProductRow).where(*_of(run), SyncedProductRow.uuid.in_(uuids))
                )
                db.execute(insert(SyncedProductRow), rows)
            self._guarded(db, run, cursor=cursor, done=SyncRow.done + len(rows))

    def finish(self, run: Run) -> int | None:
        """The last page is read: drop what left the selection, record the run; the removed.

        An incremental run that holds fewer products than the catalog has (products joined the
        selection without being updated: its criteria changed) reads everything instead: None.
        """
        now = _now()
        with self.engine.begin() as db:
            r = db.execute(select(SyncRow).where(SyncRow.pim_url == run.pim_url)).one()._mapping
            if not run.full:
                held = db.execute(
                    select(func.count()).where(*_of(run), SyncedProductRow.seen_run == run.run_id)
                ).scalar_one()
                if held < r["total"]:
                    self._guarded(db, run, full=True, since=None, cursor=None, done=0)
                    return None
            removed = db.execute(
                delete(SyncedProductRow).where(
                    SyncedProductRow.pim_url == run.pim_url,
                    (SyncedProductRow.catalog_id != run.catalog_id)
                    | (SyncedProductRow.seen_run != run.run_id),
                )
            ).rowcount
            started = _aware(r["started_at"]) if r["started_at"] else now
            self._guarded(
                db,
                run,
                state=FINISHED,
                # products changed while this run read are newer than its start: the next one
                # asks for them (a second early: the PIM's `updated` has whole seconds)
                synced_since=started - timedelta(seconds=1),
                last_finished_at=now,
                last_catalog_id=run.catalog_id,
                last_seconds=max(0, round((now - started).total_seconds())),
                last_done=r["done"],
                last_removed=removed,
                lease_token=None,
                lease_until=None,
                message=None,
            )
        return int(removed)

    def end(self, run: Run, state: str, message: str) -> None:
        """Stop the run: STOPPED (a cause the user must remove) or FAILED (taken up again)."""
        with self.engine.begin() as db:
            self._guarded(
                db,
                run,
                state=state,
                message=message[:1000],
                lease_token=None,
                lease_until=None,
            )

    def _guarded(self, db: DbConnection, run: Run, **values: Any) -> None:
        moved = db.execute(
            update(SyncRow)
            .where(SyncRow.pim_url == run.pim_url, SyncRow.lease_token == run.token)
            .values(**values)
        ).rowcount
        if not moved:
            raise LeaseLost(run.pim_url)  # the transaction rolls back: nothing written twice


def _of(run: Run) -> tuple[Any, ...]:
    return (SyncedProductRow.pim_url == run.pim_url, SyncedProductRow.catalog_id == run.catalog_id)


def _fresh_run(catalog_id: str, run_id: str, full: bool, now: datetime) -> dict[str, Any]:
    return {
        "catalog_id": catalog_id,
        "run_id": run_id,
        "state": QUEUED,
        "full": full,
        "phase": "uuids",
        "cursor": None,
        "since": None,
        "queued_at": now,
        "started_at": None,
        "total": 0,
        "done": 0,
        "message": None,
        "lease_token": None,
        "lease_until": None,
    }


def _run_id() -> str:
    return secrets.token_hex(16)


def _aware_or_none(moment: datetime | None) -> datetime | None:
    return _aware(moment) if moment else None
