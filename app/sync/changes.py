"""Single products to read again or drop, as events (or a user's action in the PIM) ask: noted in
the database at once, applied by the sync's workers a moment later.

- `note()` is what a webhook calls: one row per product (many events for one product make one
  read), and whether a job must be queued;
- `apply()` is the job: it reads each product from the catalog (`mapped-products/{uuid}`), stores
  it or drops it. Every write says when its reading was asked for, so a run reading every page
  at the same time never puts an older reading over it (see `copy.py`).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, String, bindparam, delete, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from ..api import PimApi
from ..catalogs.catalog import catalog_path
from ..db import Base, database_now, now, upsert_statement
from ..errors import AppError, PimHttpError
from . import copy

log = logging.getLogger(__name__)

BATCH = 50  # products a job claims at once
READERS = 2  # reads in flight per job: with a run's one, within the PIM's 4 per App
CLAIM = timedelta(seconds=60)  # a job that has not finished its batch by then is gone
#: products waiting in one PIM: beyond, a webhook answers 429 (the platform slows down)
MAX_WAITING = 100_000
JOB_SECONDS = 40.0  # a job applies changes for this long, then queues the next one


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
        # built once (the webhook runs it for every event): how many wait, counted up to
        # MAX_WAITING only, never all of a long backlog
        upto = (
            select(ChangeRow.uuid)
            .where(ChangeRow.pim_url == bindparam("pim_url"))
            .limit(MAX_WAITING)
            .subquery()
        )
        self._waiting = select(func.count()).select_from(upto)

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
        """
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
            waiting = db.execute(self._waiting, {"pim_url": pim_url}).scalar_one()
            if waiting >= MAX_WAITING:
                raise TooManyWaiting(pim_url)
            if rows:
                db.execute(self._note, rows)
        return not waiting

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


def apply(
    changes: Changes,
    api: PimApi,
    catalog_id: str | None,
    *,
    seconds: float = JOB_SECONDS,
) -> tuple[int, bool]:
    """Apply the PIM's waiting changes for about `seconds`: (how many, whether some are left).

    Deleted → dropped from the copy. Created or updated → read from the catalog: stored, or
    dropped when the catalog answers 404 (events are not filtered by catalog: a product outside
    the selection is no product of the copy). A PIM that fails leaves the batch for the next job.
    """
    pim_url = api.pim_url
    deadline = time.monotonic() + seconds
    applied = 0
    with ThreadPoolExecutor(READERS, thread_name_prefix="changes") as readers:
        while time.monotonic() < deadline:
            batch = changes.claim(pim_url)
            if not batch:
                return applied, False
            if catalog_id is None:  # no catalog (yet): nothing of this PIM is copied
                for change in batch:
                    changes.done(pim_url, change)
                continue
            try:
                for change, outcome in _read_all(readers, api, catalog_id, batch):
                    moment, product = outcome
                    if product is None:
                        changes.drop_product(pim_url, change.uuid, moment)
                    elif not changes.put_product(pim_url, catalog_id, product, moment):
                        log.warning(
                            "changed product not stored pim=%s uuid=%s", pim_url, change.uuid
                        )
                    changes.done(pim_url, change)
                    applied += 1
            except AppError as error:  # TokenRevoked among them
                changes.release(pim_url, batch)
                log.warning("changes not applied pim=%s reason=%s", pim_url, error)
                return applied, True
    return applied, True


def _read_all(
    readers: ThreadPoolExecutor, api: PimApi, catalog_id: str, batch: list[Change]
) -> Iterator[tuple[Change, tuple[datetime, dict[str, Any] | None]]]:
    """Each change with (when it was asked for, the product or None when it is gone), in order;
    reads go READERS at a time, in the caller's app context."""
    futures = [
        (change, readers.submit(contextvars.copy_context().run, _read, api, catalog_id, change))
        for change in batch
    ]
    for change, future in futures:
        yield change, future.result()


def _read(api: PimApi, catalog_id: str, change: Change) -> tuple[datetime, dict[str, Any] | None]:
    if change.deleted:
        return change.noticed_at, None
    asked_at = now()
    try:
        product = api.get(catalog_path(catalog_id, "mapped-products", change.uuid))
    except PimHttpError as error:
        if error.pim_status in (404, 422):  # not in the selection (or no product uuid)
            return asked_at, None
        raise
    if not isinstance(product, dict) or product.get("uuid") != change.uuid:
        return asked_at, None  # an answer that is no such product: nothing to keep of it
    return asked_at, product
