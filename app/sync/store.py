"""The sync's tables: each PIM's run (`catalog_syncs`, with its lease) and its copy of the
catalog (`synced_products`). Every page is written with its cursor in one transaction, guarded by
the lease: a worker killed half way loses nothing, two never run one PIM's sync at once."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
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

from ..catalogs.catalog import CopiedPage
from ..db import Base, now, upsert_statement
from .status import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, SyncStatus

LEASE = timedelta(seconds=20)  # a worker that has not renewed its lease for this long is gone
QUEUE_GRACE = timedelta(seconds=60)  # a queued run that no worker took by then is queued again


class SyncRow(Base):
    """Where one PIM's sync stands: the current (or last) run, and the last finished one."""

    __tablename__ = "catalog_syncs"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    full: Mapped[bool] = mapped_column(Boolean)  # this run reads every product
    phase: Mapped[str] = mapped_column(String(16), default="uuids")  # uuids, then products
    cursor: Mapped[str | None] = mapped_column(Text)  # the next page to read, None: from the start
    since: Mapped[datetime | None]  # updated_after
    queued_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    total: Mapped[int] = mapped_column(Integer, default=0)  # products in the catalog
    done: Mapped[int] = mapped_column(Integer, default=0)  # products read by this run
    message: Mapped[str | None] = mapped_column(Text)  # why it stopped or failed, in plain words
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    #: the start of the last run that finished: the next run reads products updated after it
    synced_since: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_catalog_id: Mapped[str | None] = mapped_column(String(255))  # what the copy holds
    last_seconds: Mapped[int | None] = mapped_column(Integer)
    last_done: Mapped[int | None] = mapped_column(Integer)
    last_removed: Mapped[int | None] = mapped_column(Integer)


class SyncedProductRow(Base):
    """One product of a PIM's catalog as the App last read it (its mapped values)."""

    __tablename__ = "synced_products"
    __table_args__ = (Index("ix_synced_products_run", "pim_url", "catalog_id", "seen_run"),)

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    data: Mapped[str] = mapped_column(Text)  # the mapped product, as JSON
    seen_run: Mapped[str] = mapped_column(String(32))  # the last run that found it selected
    synced_at: Mapped[datetime]


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
        self._save_product = upsert_statement(
            engine.dialect.name,
            SyncedProductRow.__table__,  # type: ignore[arg-type]
            key=("pim_url", "catalog_id", "uuid"),
            columns=("pim_url", "catalog_id", "uuid", "data", "seen_run", "synced_at"),
        )

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
            last_finished_at=r["last_finished_at"],
            last_catalog_id=r["last_catalog_id"],
            last_seconds=r["last_seconds"],
            last_done=r["last_done"],
            last_removed=r["last_removed"],
        )

    def copied_page(
        self, pim_url: str, catalog_id: str, limit: int, after: str | None
    ) -> CopiedPage | None:
        """A page of the local copy, by uuid as the PIM sorts them (`after`: the last uuid of
        the page before); None when no run of this catalog finished (the PIM is asked then).

        A catalog made again (after a disconnect) has a new id: its copy starts empty."""
        status = self.status(pim_url)
        if status is None or not status.has_copy_of(catalog_id) or not status.last_finished_at:
            return None
        rows = self.products(pim_url, catalog_id, limit=limit + 1, after=after)
        page = rows[:limit]
        cursor = str(page[-1]["uuid"]) if len(rows) > limit and page else None
        return CopiedPage(page, cursor, status.last_finished_at)

    def products(
        self, pim_url: str, catalog_id: str, *, limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        """Products of the local copy, by uuid (`after`: the last uuid before)."""
        query = (
            select(SyncedProductRow.data)
            .where(SyncedProductRow.pim_url == pim_url, SyncedProductRow.catalog_id == catalog_id)
            .order_by(SyncedProductRow.uuid)
            .limit(limit)
        )
        if after:
            query = query.where(SyncedProductRow.uuid > after)
        with self.engine.connect() as db:
            return [json.loads(data) for (data,) in db.execute(query)]

    def forget(self, pim_url: str) -> None:
        """Delete the PIM's copy and its runs (the App forgot that PIM)."""
        with self.engine.begin() as db:
            db.execute(delete(SyncedProductRow).where(SyncedProductRow.pim_url == pim_url))
            db.execute(delete(SyncRow).where(SyncRow.pim_url == pim_url))

    # -- starting a run -------------------------------------------------------------------------

    def request(self, pim_url: str, catalog_id: str, *, full: bool) -> str | None:
        """Queue a run for the PIM; its run id, or None when one is queued or running already.

        A run that failed (the PIM down, say) is taken up again where it stopped; otherwise the
        run is incremental when an earlier one finished for this catalog, full if not.
        """
        moment = now()
        with self.engine.begin() as db:
            row = db.execute(select(SyncRow).where(SyncRow.pim_url == pim_url)).first()
            if row is None:
                run_id = _run_id()
                try:
                    with db.begin_nested():
                        first = _fresh_run(catalog_id, run_id, True, moment)
                        db.execute(insert(SyncRow).values(pim_url=pim_url, **first))
                except IntegrityError:
                    return None  # another request queued the first run meanwhile
                return run_id
            r = row._mapping
            if r["state"] in ACTIVE:
                return None
            resume = r["state"] == FAILED and r["catalog_id"] == catalog_id and not full
            if resume:
                values: dict[str, Any] = {"state": QUEUED, "queued_at": moment, "message": None}
                run_id = r["run_id"]
            else:
                same_catalog = r["catalog_id"] == catalog_id and r["synced_since"] is not None
                run_id = _run_id()
                values = _fresh_run(catalog_id, run_id, full or not same_catalog, moment)
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
        moment = now()
        waited_too_long = (SyncRow.state == QUEUED) & (SyncRow.queued_at < moment - QUEUE_GRACE)
        with self.engine.begin() as db:
            rows = db.execute(
                select(SyncRow.pim_url, SyncRow.run_id).where(
                    or_(
                        (SyncRow.state == RUNNING)
                        & (SyncRow.lease_until.is_(None) | (SyncRow.lease_until < moment)),
                        waited_too_long,
                    )
                )
            ).all()
            # queued again now: the next sweep waits for the grace period again
            db.execute(update(SyncRow).where(waited_too_long).values(queued_at=moment))
        return [(str(p), str(r)) for p, r in rows]

    # -- running it (the worker) ----------------------------------------------------------------

    def acquire(self, pim_url: str, run_id: str, token: str | None = None) -> Run | None:
        """Take the run's lease: free, expired, or already this job's (`token`); else None."""
        moment = now()
        new_token = token or secrets.token_hex(16)
        free = SyncRow.lease_until.is_(None) | (SyncRow.lease_until < moment)
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
                    lease_until=moment + LEASE,
                    started_at=func.coalesce(SyncRow.started_at, moment),
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
            since=r["since"],
        )

    def renew(self, run: Run) -> None:
        """Keep the lease for another LEASE; LeaseLost when another worker took it."""
        with self.engine.begin() as db:
            self._guarded(db, run, lease_until=now() + LEASE)

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
        moment = now()
        rows = [
            {
                "pim_url": run.pim_url,
                "catalog_id": run.catalog_id,
                "uuid": str(product["uuid"]),
                "data": json.dumps(product, ensure_ascii=False, separators=(",", ":")),
                "seen_run": run.run_id,
                "synced_at": moment,
            }
            for product in products
        ]
        # one row per uuid (a PIM that lists one twice in a page would break the statement)
        unique = list({row["uuid"]: row for row in rows}.values())
        with self.engine.begin() as db:
            # an upsert: a page read again after a crash changes nothing
            if unique:
                db.execute(self._save_product, unique)
            self._guarded(db, run, cursor=cursor, done=SyncRow.done + len(unique))

    def finish(self, run: Run) -> int | None:
        """The last page is read: drop what left the selection, record the run; the removed.

        An incremental run that holds fewer products than the catalog has (products joined the
        selection without being updated: its criteria changed) reads everything instead: None.
        """
        moment = now()
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
            started = r["started_at"] or moment
            self._guarded(
                db,
                run,
                state=FINISHED,
                # products changed while this run read are newer than its start: the next one
                # asks for them (a second early: the PIM's `updated` has whole seconds)
                synced_since=started - timedelta(seconds=1),
                last_finished_at=moment,
                last_catalog_id=run.catalog_id,
                last_seconds=max(0, round((moment - started).total_seconds())),
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


def _fresh_run(catalog_id: str, run_id: str, full: bool, moment: datetime) -> dict[str, Any]:
    return {
        "catalog_id": catalog_id,
        "run_id": run_id,
        "state": QUEUED,
        "full": full,
        "phase": "uuids",
        "cursor": None,
        "since": None,
        "queued_at": moment,
        "started_at": None,
        "total": 0,
        "done": 0,
        "message": None,
        "lease_token": None,
        "lease_until": None,
    }


def _run_id() -> str:
    return secrets.token_hex(16)
