"""Single products to read again or drop, as events (or a user's action in the PIM) ask: noted in
the database at once, applied by the sync's workers a moment later.

- `note()` is what a webhook calls: one row per product (many events for one product make one
  read), and whether a job must be queued;
- the job (`change_job.apply()`) reads each product from the catalog, or many as a list, and
  stores it or drops it through `Changes`. Every write says when its reading was asked for, so
  a run reading every page at the same time never puts an older reading over it (see
  `copy.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, String, bindparam, delete, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, database_now, now, upsert_statement
from . import copy

log = logging.getLogger(__name__)

BATCH = 50  # products a job claims at once
READERS = 4  # reads in flight per job; the App's shared count keeps it all to 4 per PIM
CLAIM = timedelta(seconds=60)  # a job that has not finished its batch by then is gone
#: a read ends this long before its claim does, so that its product is saved in time
SAVE_MARGIN = 5.0
#: products waiting in one PIM: beyond, a webhook answers 429 (the platform slows down)
MAX_WAITING = 100_000
JOB_SECONDS = 40.0  # a job applies changes for this long, then queues the next one
#: seconds a count of the waiting changes stands for, while far below MAX_WAITING
RECOUNT_SECONDS = 1.0
#: how far below MAX_WAITING a count must be to stand: more than one second's worth of changes
HEADROOM = 1_000

# Bulk changes (an import sends one event per product, up to 100 a second, faster than single
# reads clear them): beyond COALESCE_AT waiting reads, a job lists the catalog's products updated
# since the first of them instead, once the burst settles.
COALESCE_AT = 100
SETTLE = timedelta(seconds=2)  # the burst has settled when no change came for this long
MAX_SETTLE = timedelta(seconds=10)  # or when its first change has waited this long
CLOCK_MARGIN = timedelta(seconds=60)  # `updated_after` that much earlier: clocks differ
#: a product read this long after its change was noticed is read as changed: its event costs no
#: call (the PIM's list may lag its writes by a moment)
FRESH = timedelta(seconds=2)
#: a change noticed this long before a listing that did not list its product is of a product
#: out of the selection (events are not filtered by catalog): dropped as a 404 would drop it
UNLISTED = timedelta(seconds=10)


class ChangeRow(Base):
    """A product of a PIM to read again (or to drop: `deleted`), noticed at `noticed_at`."""

    __tablename__ = "sync_changes"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    deleted: Mapped[bool] = mapped_column(Boolean)
    noticed_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]


class TooManyWaiting(Exception):
    """The PIM has MAX_WAITING changes waiting already: ask the sender to slow down."""


@dataclass(frozen=True)
class Change:
    uuid: str
    deleted: bool
    noticed_at: datetime


@dataclass(frozen=True)
class Burst:
    """The reads that wait for a PIM: how many, and when the first and the last were noticed."""

    count: int
    first: datetime
    last: datetime

    def settling(self, moment: datetime) -> bool:
        """True while changes still come, unless the first has waited long enough."""
        return moment - self.last < SETTLE and moment - self.first < MAX_SETTLE


class Changes:
    """The changes waiting for a worker, over the App's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._note = upsert_statement(
            engine.dialect.name,
            ChangeRow.__table__,  # type: ignore[arg-type]
            key=("pim_url", "uuid"),
            columns=("pim_url", "uuid", "deleted", "noticed_at", "claimed_until"),
        )
        of_pim = ChangeRow.pim_url == bindparam("pim_url")
        # whether any change waits: one step in the primary key's index, whatever the backlog
        self._any_waiting = select(ChangeRow.uuid).where(of_pim).limit(1)
        # how many wait, up to MAX_WAITING: a scan, made at most once a second per PIM
        upto = select(ChangeRow.uuid).where(of_pim).limit(MAX_WAITING).subquery()
        self._waiting = select(func.count()).select_from(upto)
        self._counted: dict[str, tuple[float, int]] = {}  # pim_url: (until, count)
        self._counted_lock = threading.Lock()

    def note(
        self,
        pim_url: str,
        changes: Mapping[str, bool],
        within: Callable[[Connection], None] | None = None,
    ) -> bool:
        """Remember products to read again ({uuid: deleted}); True when none of the PIM's was
        waiting before (the caller queues a job: one already queued takes these too).

        `within(db)` writes more in the same transaction (a webhook's event id): what it raises
        undoes it all. A product noticed again while a job reads it is read once more.
        TooManyWaiting (nothing written) when MAX_WAITING changes of the PIM wait already.
        """
        if self._backlog(pim_url) >= MAX_WAITING:
            raise TooManyWaiting(pim_url)
        moment = now()
        rows = [
            {
                "pim_url": pim_url,
                "uuid": u,
                "deleted": d,
                "noticed_at": moment,
                "claimed_until": None,
            }
            for u, d in changes.items()
        ]
        with self.engine.begin() as db:
            if within:
                within(db)
            waiting = db.execute(self._any_waiting, {"pim_url": pim_url}).first() is not None
            if rows:
                db.execute(self._note, rows)
        return not waiting

    def _backlog(self, pim_url: str) -> int:
        """How many of the PIM's changes wait, up to MAX_WAITING. Counted outside any write,
        and not for every event: a count far below the cap stands for RECOUNT_SECONDS (the
        platform sends at most 100 events a second, so it cannot be passed meanwhile)."""
        moment = time.monotonic()
        with self._counted_lock:
            until, count = self._counted.get(pim_url, (0.0, 0))
        if until > moment:
            return count
        with self.engine.connect() as db:
            count = int(db.execute(self._waiting, {"pim_url": pim_url}).scalar_one())
        if count < MAX_WAITING - HEADROOM:
            with self._counted_lock:
                self._counted[pim_url] = (moment + RECOUNT_SECONDS, count)
        return count

    def claim(self, pim_url: str, limit: int = BATCH) -> list[Change]:
        """Take up to `limit` changes nobody is applying (or whose job is gone)."""
        with self.engine.begin() as db:
            moment = database_now(db)
            free = (ChangeRow.claimed_until.is_(None)) | (ChangeRow.claimed_until < moment)
            rows = db.execute(
                select(ChangeRow.uuid, ChangeRow.deleted, ChangeRow.noticed_at)
                .where(ChangeRow.pim_url == pim_url, free)
                .order_by(ChangeRow.noticed_at)
                .limit(limit)
            ).all()
            changes = [Change(str(u), bool(d), n) for u, d, n in rows]
            if changes:
                db.execute(
                    update(ChangeRow)
                    .where(
                        ChangeRow.pim_url == pim_url, ChangeRow.uuid.in_(c.uuid for c in changes)
                    )
                    .values(claimed_until=moment + CLAIM)
                )
        return changes

    def done(self, pim_url: str, change: Change) -> None:
        """The change is applied (unless the product was noticed again meanwhile)."""
        with self.engine.begin() as db:
            db.execute(
                delete(ChangeRow).where(
                    ChangeRow.pim_url == pim_url,
                    ChangeRow.uuid == change.uuid,
                    ChangeRow.noticed_at <= change.noticed_at,
                )
            )

    def release(self, pim_url: str, changes: list[Change]) -> None:
        """Give claimed changes back (the PIM failed): the next job tries them again."""
        with self.engine.begin() as db:
            db.execute(
                update(ChangeRow)
                .where(ChangeRow.pim_url == pim_url, ChangeRow.uuid.in_(c.uuid for c in changes))
                .values(claimed_until=None)
            )

    def waiting_pims(self, older_than: timedelta = timedelta(seconds=30)) -> list[str]:
        """PIMs with changes that no job took for a while (a job lost with its worker, a broker
        that was down when they came): the sweep queues a job for each."""
        with self.engine.begin() as db:
            moment = database_now(db)
            free = (ChangeRow.claimed_until.is_(None)) | (ChangeRow.claimed_until < moment)
            query = (
                select(ChangeRow.pim_url)
                .where(free, ChangeRow.noticed_at < moment - older_than)
                .distinct()
            )
            return [str(p) for p in db.execute(query).scalars()]

    def burst(self, pim_url: str) -> Burst | None:
        """The reads (not deletions) that wait for the PIM and that no job holds, or None."""
        with self.engine.begin() as db:
            moment = database_now(db)
            free = (ChangeRow.claimed_until.is_(None)) | (ChangeRow.claimed_until < moment)
            count, first, last = db.execute(
                select(
                    func.count(), func.min(ChangeRow.noticed_at), func.max(ChangeRow.noticed_at)
                ).where(ChangeRow.pim_url == pim_url, ~ChangeRow.deleted, free)
            ).one()
        return Burst(int(count), first, last) if count else None

    def claim_reads(self, pim_url: str) -> datetime | None:
        """Take every waiting read nobody holds, for one listing; until when (None: none)."""
        with self.engine.begin() as db:
            moment = database_now(db)
            free = (ChangeRow.claimed_until.is_(None)) | (ChangeRow.claimed_until < moment)
            until = moment + CLAIM
            taken = db.execute(
                update(ChangeRow)
                .where(ChangeRow.pim_url == pim_url, ~ChangeRow.deleted, free)
                .values(claimed_until=until)
            ).rowcount
        return until if taken else None

    def release_claim(self, pim_url: str, until: datetime) -> None:
        """Give back what claim_reads() took and is still waiting."""
        with self.engine.begin() as db:
            db.execute(
                update(ChangeRow)
                .where(ChangeRow.pim_url == pim_url, ChangeRow.claimed_until == until)
                .values(claimed_until=None)
            )

    def drop_satisfied(self, pim_url: str, catalog_id: str) -> int:
        """Forget the reads whose product the copy holds as read after its change (FRESH after
        it was noticed): another read would tell nothing new. How many."""
        with self.engine.begin() as db:
            rows = db.execute(
                select(ChangeRow.uuid, ChangeRow.noticed_at, copy.product_table.c.synced_at)
                .join(
                    copy.product_table,
                    (copy.product_table.c.pim_url == ChangeRow.pim_url)
                    & (copy.product_table.c.uuid == ChangeRow.uuid)
                    & (copy.product_table.c.catalog_id == catalog_id),
                )
                .where(ChangeRow.pim_url == pim_url, ~ChangeRow.deleted)
            ).all()
            done = [{"u": u, "n": n} for u, n, read in rows if read >= n + FRESH]
            if done:  # one statement, executed for each (not one round of SQL each)
                db.execute(
                    delete(ChangeRow).where(
                        ChangeRow.pim_url == pim_url,
                        ChangeRow.uuid == bindparam("u"),
                        ChangeRow.noticed_at == bindparam("n"),
                    ),
                    done,
                )
        return len(done)

    def drop_unlisted(self, pim_url: str, until: datetime, before: datetime) -> int:
        """The reads of a listing's claim (`until`) noticed before `before` whose product the
        listing did not give: out of the selection, so out of the copy (as of `before`)."""
        with self.engine.begin() as db:
            uuids = (
                db.execute(
                    select(ChangeRow.uuid).where(
                        ChangeRow.pim_url == pim_url,
                        ChangeRow.claimed_until == until,
                        ChangeRow.noticed_at < before - UNLISTED,
                    )
                )
                .scalars()
                .all()
            )
            for uuid in uuids:
                copy.remove(db, pim_url, uuid, before - UNLISTED)
                db.execute(
                    delete(ChangeRow).where(
                        ChangeRow.pim_url == pim_url,
                        ChangeRow.uuid == uuid,
                        ChangeRow.claimed_until == until,
                    )
                )
        return len(uuids)

    def put_page(
        self, pim_url: str, catalog_id: str, products: list[Any], read_at: datetime
    ) -> None:
        """Store a page of the catalog's products read at `read_at` (see put_product)."""
        rows, _ = copy.product_rows(products, pim_url, catalog_id, "change", read_at)
        if not rows:
            return
        with self.engine.begin() as db:
            gone = copy.removed_since(db, pim_url, [r["uuid"] for r in rows], read_at)
            kept = [r for r in rows if r["uuid"] not in gone]
            copy.save(db, kept)
            copy.select_uuids(db, pim_url, [r["uuid"] for r in kept])

    def put_product(
        self, pim_url: str, catalog_id: str, product: Mapping[str, Any], read_at: datetime
    ) -> bool:
        """Store one product of the catalog read at `read_at` (unless a later reading is stored);
        False when it cannot be stored (see copy.product_rows). It joins the selection of a run
        in progress, so that the run does not drop it as gone."""
        rows, _ = copy.product_rows([product], pim_url, catalog_id, "change", read_at)
        if not rows:
            return False
        with self.engine.begin() as db:
            if copy.removed_since(db, pim_url, [rows[0]["uuid"]], read_at):
                return True  # found gone after this reading: it stays gone
            copy.save(db, rows)
            copy.select_uuids(db, pim_url, [rows[0]["uuid"]])
        return True

    def drop_product(self, pim_url: str, uuid: str, moment: datetime) -> None:
        """The product left the catalog (deleted, or out of the selection) as of `moment`."""
        with self.engine.begin() as db:
            copy.remove(db, pim_url, uuid, moment)

    def count(self, pim_url: str) -> int:
        """How many products of the PIM wait to be read again."""
        with self.engine.connect() as db:
            query = select(func.count()).select_from(ChangeRow).where(ChangeRow.pim_url == pim_url)
            return int(db.execute(query).scalar_one())

    def forget(self, pim_url: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(ChangeRow).where(ChangeRow.pim_url == pim_url))
