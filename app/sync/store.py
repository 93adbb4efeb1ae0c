"""The sync's tables: each PIM's run (`catalog_syncs`, with its lease) and its copy of the
catalog (`synced_products`). Every page is written with its cursor in one transaction, guarded by
the lease: a worker killed half way loses nothing, two never run one PIM's sync at once."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
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

from ..db import Base, database_now, now
from . import copy
from .copy import product_rows
from .status import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, SyncStatus

LEASE = timedelta(seconds=20)  # the default lease (AKENEO_SYNC_LEASE)
QUEUE_GRACE = timedelta(seconds=60)  # a queued run that no worker took by then is queued again
#: the next run asks for products updated since the start of the last one, less this: a PIM
#: whose clock is behind the App's, or that indexes a change late, loses nothing
OVERLAP = timedelta(minutes=10)
MAX_SELECTION = 2_000_000  # products in one catalog: a `product-uuids` list past it never ends
SLACK = 1_000  # products a run may read beyond its selection (they joined it meanwhile)


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


class PageRefused(Exception):
    """The PIM's list cannot be the catalog: it loops, or it is longer than the selection."""


class SyncStore:
    """The sync's rows, over the App's database engine."""

    def __init__(self, engine: Engine, lease: timedelta = LEASE) -> None:
        self.engine = engine
        self.lease = lease  # a worker that has not renewed its lease for this long is gone

    # -- what pages ask -------------------------------------------------------------------------

    def status(self, pim_url: str) -> SyncStatus | None:
        """The PIM's sync, or None when it never ran."""
        with self.engine.begin() as db:
            row = db.execute(select(SyncRow).where(SyncRow.pim_url == pim_url)).first()
        if row is None:
            return None
        values = {f.name: row._mapping[f.name] for f in fields(SyncStatus) if f.name != "held"}
        held = 0
        if row.state == FINISHED and row.last_catalog_id:  # only a finished run's line says it:
            with self.engine.connect() as db:  # no count at each poll of a running one
                held = copy.count(db, pim_url, row.last_catalog_id)
        return SyncStatus(**values, held=held)

    def products(
        self, pim_url: str, catalog_id: str, *, limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        """Products of the local copy, by uuid (`after`: the last uuid before)."""
        with self.engine.connect() as db:
            return copy.products(db, pim_url, catalog_id, limit, after)

    def forget(self, pim_url: str) -> None:
        """Delete the PIM's copy and its runs (the App forgot that PIM)."""
        with self.engine.begin() as db:
            copy.forget(db, pim_url)
            db.execute(delete(SyncRow).where(SyncRow.pim_url == pim_url))

    # -- starting a run -------------------------------------------------------------------------

    def request(self, pim_url: str, catalog_id: str, *, full: bool) -> str | None:
        """Queue a run for the PIM; its run id, or None when one is queued or running already.

        A run that failed (the PIM down, say) is taken up again where it stopped; otherwise the
        run is incremental when an earlier one finished for this catalog, full if not.
        """
        with self.engine.begin() as db:
            moment = database_now(db)
            row = db.execute(select(SyncRow).where(SyncRow.pim_url == pim_url)).first()
            if row is None:
                run_id = _run_id()
                copy.clear_run(db, pim_url)
                try:
                    with db.begin_nested():
                        first = _fresh_run(catalog_id, run_id, True, moment)
                        db.execute(insert(SyncRow).values(pim_url=pim_url, **first))
                except IntegrityError:
                    return None  # another request queued the first run meanwhile
                return run_id
            r = row._mapping
            if r["state"] == QUEUED and full and not r["full"]:
                # a full read asked for while an incremental one waits: that one reads all
                db.execute(
                    update(SyncRow)
                    .where(SyncRow.pim_url == pim_url, SyncRow.state == QUEUED)
                    .values(full=True, since=None)
                )
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
                copy.clear_run(db, pim_url)  # (rolled back if another request won the race)
            moved = db.execute(
                update(SyncRow)
                .where(SyncRow.pim_url == pim_url, SyncRow.state.not_in(ACTIVE))
                .values(**values)
            ).rowcount
            return run_id if moved else None

    def to_requeue(self) -> list[tuple[str, str]]:
        """(pim_url, run_id) of the runs no live worker holds: their worker died, or no worker
        took the job (a broker that lost it). The sweep queues them again."""
        with self.engine.begin() as db:
            moment = database_now(db)
            waited_too_long = (SyncRow.state == QUEUED) & (SyncRow.queued_at < moment - QUEUE_GRACE)
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
        """Take the run's lease: free, expired, or handed to this job (`token`); else None.

        The lease gets a new token each time: a job that a broker delivers twice carries the
        old one, and never runs beside its twin."""
        new_token = secrets.token_hex(16)
        with self.engine.begin() as db:
            moment = database_now(db)
            free = SyncRow.lease_until.is_(None) | (SyncRow.lease_until < moment)
            if token:
                free = free | (SyncRow.lease_token == token)
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
                    lease_until=moment + self.lease,
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
        """Keep the lease for another `lease`; LeaseLost when another worker took it."""
        with self.engine.begin() as db:
            self._guarded(db, run, lease_until=database_now(db) + self.lease)

    def pause(self, run: Run, seconds: float) -> None:
        """Keep the lease while the run waits `seconds` for the PIM (a 429's Retry-After): no
        sweep takes it up meanwhile."""
        with self.engine.begin() as db:
            until = database_now(db) + timedelta(seconds=seconds) + self.lease
            self._guarded(db, run, lease_until=until)

    def save_uuids(self, run: Run, uuids: list[str], cursor: str | None) -> None:
        """One page of the catalog's uuids: record them in the run's selection, count them,
        save the cursor (None: the last page; then the products, or the end of a recheck)."""
        with self.engine.begin() as db:
            self._check_cursor(db, run, cursor)
            copy.select_uuids(db, run.pim_url, uuids)
            size = copy.selection_size(db, run.pim_url)
            if size > MAX_SELECTION:
                raise PageRefused(
                    f"The PIM lists more than {MAX_SELECTION:,} products in the catalog."
                )
            values: dict[str, Any] = {"cursor": cursor}
            if cursor is None:
                values["phase"] = "products" if run.phase == "uuids" else "checked"
            if run.phase == "uuids":  # a recheck adds what it finds, it counts nothing
                values["total"] = size
            self._guarded(db, run, **values)

    def save_products(
        self,
        run: Run,
        products: Iterable[Mapping[str, Any]],
        cursor: str | None,
        read_at: datetime | None = None,
    ) -> int:
        """One page of mapped products, asked for at `read_at`: store those the selection listed
        (one row each) unless found gone since, skip (and remember) those the database cannot
        hold, save the cursor; how many were stored. The run counts what it read, stored or
        not: a list of products the selection never listed stops past its size too."""
        read_at = read_at or now()
        products = list(products)
        rows, skipped = product_rows(products, run.pim_url, run.catalog_id, run.run_id, read_at)
        with self.engine.begin() as db:
            self._check_cursor(db, run, cursor)
            uuids = [row["uuid"] for row in rows] + list(skipped)
            listed = copy.storable(db, run.pim_url, uuids, read_at)
            rows = [row for row in rows if row["uuid"] in listed]
            state = db.execute(select(SyncRow.done, SyncRow.total).where(_run_row(run))).one()
            if state.done + len(products) > state.total + SLACK:
                raise PageRefused(
                    "The PIM's list of mapped products is longer than the catalog's selection "
                    f"({state.total} products)."
                )
            # an upsert: a page read again after a crash changes nothing
            copy.save(db, rows)
            copy.skip(db, run.pim_url, {u: why for u, why in skipped.items() if u in listed})
            self._guarded(db, run, cursor=cursor, done=SyncRow.done + len(products))
        return len(rows)

    def finish(self, run: Run) -> int | None:
        """The last page is read: drop what left the selection, record the run; the removed.

        None when the run goes on instead: an incremental run that holds fewer products than
        the selection (products joined it without being updated) reads everything; a run that
        would remove products reads the selection once more first (a PIM that answered short
        once costs nothing: only products missing from both readings go).
        """
        moment = now()
        with self.engine.begin() as db:
            r = db.execute(select(SyncRow).where(_run_row(run))).one()._mapping
            if r["phase"] == "products":
                if not run.full and copy.held(db, run.pim_url, run.catalog_id) < r["total"]:
                    self._guarded(
                        db, run, full=True, since=None, phase="products", cursor=None, done=0
                    )
                    return None
                if copy.unselected(db, run.pim_url, run.catalog_id):
                    self._guarded(db, run, phase="recheck", cursor=None)
                    return None
            # after one reading nothing left the selection (just checked): no second scan
            removed = (
                0
                if r["phase"] == "products"
                else copy.remove_unselected(db, run.pim_url, run.catalog_id)
            )
            skipped = copy.skipped_message(db, run.pim_url)
            copy.clear_run(db, run.pim_url)
            copy.trim_removals(db, moment - copy.KEEP_REMOVALS)
            started = r["started_at"] or moment
            self._guarded(
                db,
                run,
                state=FINISHED,
                # products changed while this run read are newer than its start: the next one
                # asks for them, and for a margin before (clocks differ, indexing takes time)
                synced_since=started - OVERLAP,
                last_finished_at=moment,
                last_catalog_id=run.catalog_id,
                last_seconds=max(0, round((moment - started).total_seconds())),
                last_done=r["done"],
                last_removed=removed,
                lease_token=None,
                lease_until=None,
                message=skipped,
            )
        return int(removed)

    def end(self, run: Run, state: str, message: str) -> None:
        """Stop the run: STOPPED (a cause the user must remove: the next run starts anew) or
        FAILED (the next run goes on from the cursor)."""
        with self.engine.begin() as db:
            self._guarded(
                db,
                run,
                state=state,
                message=message[:1000],
                lease_token=None,
                lease_until=None,
            )

    def _check_cursor(self, db: DbConnection, run: Run, cursor: str | None) -> None:
        if cursor is not None and not copy.first_visit(db, run.pim_url, f"{run.phase} {cursor}"):
            raise PageRefused("The PIM's list never ends: a page links back to an earlier one.")

    def _guarded(self, db: DbConnection, run: Run, **values: Any) -> None:
        moved = db.execute(
            update(SyncRow)
            .where(SyncRow.pim_url == run.pim_url, SyncRow.lease_token == run.token)
            .values(**values)
        ).rowcount
        if not moved:
            raise LeaseLost(run.pim_url)  # the transaction rolls back: nothing written twice


def _run_row(run: Run) -> Any:
    return SyncRow.pim_url == run.pim_url


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
