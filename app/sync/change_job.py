"""The change job: the PIM's waiting changes applied by a sync worker, one read per product, or
one listing for a burst of them (an import sends an event per product). The changes and their
settings are `changes.py`'s; this reads the PIM within each batch's claim."""

from __future__ import annotations

import contextvars
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from ..api import PimApi, read_ahead
from ..catalogs.catalog import catalog_path
from ..db import now
from ..errors import AppError, PimHttpError
from . import changes as store
from .steps import atom

log = logging.getLogger(__name__)


def apply(
    changes: store.Changes,
    api: PimApi,
    catalog_id: str | None,
    *,
    seconds: float = store.JOB_SECONDS,
) -> tuple[int, bool]:
    """Apply the PIM's waiting changes for about `seconds`: (how many, whether some are left).

    Deleted → dropped from the copy. Created or updated → read from the catalog: stored, or
    dropped when the catalog answers 404 (events are not filtered by catalog: a product outside
    the selection is no product of the copy). A PIM that fails leaves the batch for the next job.
    """
    pim_url = api.pim_url
    deadline = time.monotonic() + seconds
    # the longest one read may take: a read starts only when it can end within its claim
    one_read = min(api.client.timeout, store.CLAIM.total_seconds() / 2)
    applied, left = 0, True
    unread: list[store.Change] = []
    with ThreadPoolExecutor(store.READERS, thread_name_prefix="changes") as readers:
        while time.monotonic() < deadline:
            if catalog_id is not None:
                changes.drop_satisfied(pim_url, catalog_id)
                burst = changes.burst(pim_url)
                if burst and burst.count > store.COALESCE_AT:
                    if burst.settling(now()):
                        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                        continue
                    if not _list_changed(changes, api, catalog_id, deadline):
                        break  # the PIM failed: the changes wait for the next job
                    continue
            claimed_at = time.monotonic()
            batch = changes.claim(pim_url)
            if not batch:
                left = False
                break
            if catalog_id is None:  # no catalog (yet): nothing of this PIM is copied
                for change in batch:
                    changes.done(pim_url, change)
                continue
            # once the claim ends, another job may take the batch: every read of this one
            # ends before, however slow the PIM, so that no product is read by two jobs
            read_by = claimed_at + store.CLAIM.total_seconds() - store.SAVE_MARGIN
            start_by = min(deadline, read_by - one_read)
            done = 0
            try:
                for change, (moment, product) in _read_all(
                    readers, api, catalog_id, batch, start_by, read_by
                ):
                    if product is None:
                        changes.drop_product(pim_url, change.uuid, moment)
                    elif not changes.put_product(pim_url, catalog_id, product, moment):
                        log.warning(
                            "changed product not stored pim=%s uuid=%s", pim_url, change.uuid
                        )
                    changes.done(pim_url, change)
                    done += 1
            except AppError as error:  # TokenRevoked among them
                log.warning("changes not applied pim=%s reason=%s", pim_url, error)
            applied += done
            if done < len(batch):  # the PIM failed, or the time is up: the rest goes back
                unread = batch[done:]
                break
    # given back once none of this job's reads is in flight: the next job takes them
    if unread:
        changes.release(pim_url, unread)
    return applied, left


def _list_changed(changes: store.Changes, api: PimApi, catalog_id: str, deadline: float) -> bool:
    """Read every waiting change at once: the catalog's products updated since the first was
    noticed (less CLOCK_MARGIN), a page of 100 a call; False when the PIM failed."""
    pim_url = api.pim_url
    claimed_at = time.monotonic()
    burst = changes.burst(pim_url)
    until = changes.claim_reads(pim_url)
    if burst is None or until is None:
        return True
    started = now()
    # the listing ends inside its claim, as single reads do (see apply)
    read_by = min(deadline, claimed_at + store.CLAIM.total_seconds() - store.SAVE_MARGIN)
    params = {"updated_after": atom(burst.first - store.CLOCK_MARGIN)}
    path = catalog_path(catalog_id, "mapped-products")
    listing = api.items(path, params, max_seconds=max(1.0, read_by - time.monotonic()))
    read = 0
    try:
        for page in read_ahead(listing.pages()):  # the next page comes while this one is saved
            products = [item for item in page.items if _product(item)]
            changes.put_page(pim_url, catalog_id, products, page.asked_at)
            read += len(page.items)
    except AppError as error:
        log.warning("changes not listed pim=%s reason=%s", pim_url, error)
        changes.release_claim(pim_url, until)
        return False
    changes.drop_satisfied(pim_url, catalog_id)
    unlisted = 0 if listing.cut else changes.drop_unlisted(pim_url, until, started)
    changes.release_claim(pim_url, until)
    log.info(
        "changes listed pim=%s waiting=%d read=%d unlisted=%d cut=%s",
        pim_url,
        burst.count,
        read,
        unlisted,
        listing.cut,
    )
    return True


def _product(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("uuid"), str)


def _read_all(
    readers: ThreadPoolExecutor,
    api: PimApi,
    catalog_id: str,
    batch: list[store.Change],
    start_by: float,
    read_by: float,
) -> Iterator[tuple[store.Change, tuple[datetime, dict[str, Any] | None]]]:
    """Changes of `batch` in order, each with (when it was asked for, the product or None when
    it is gone). Reads go READERS at a time, in the caller's app context; none starts after
    `start_by` nor goes on after `read_by` (time.monotonic()): the changes not started by then
    are not yielded."""
    pending: deque[tuple[store.Change, Future[tuple[datetime, dict[str, Any] | None]]]] = deque()
    waiting = iter(batch)

    def start_next() -> None:
        change = next(waiting, None) if time.monotonic() < start_by else None
        if change is not None:
            context = contextvars.copy_context()
            future = readers.submit(context.run, _read, api, catalog_id, change, read_by)
            pending.append((change, future))

    for _ in range(store.READERS):
        start_next()
    while pending:
        change, future = pending.popleft()
        outcome = future.result()
        start_next()  # the next read goes on while the caller saves this one
        yield change, outcome


def _read(
    api: PimApi, catalog_id: str, change: store.Change, read_by: float
) -> tuple[datetime, dict[str, Any] | None]:
    if change.deleted:
        return change.noticed_at, None
    asked_at = now()
    try:
        path = catalog_path(catalog_id, "mapped-products", change.uuid)
        product = api.get(path, deadline=read_by)
    except PimHttpError as error:
        if error.pim_status in (404, 422):  # not in the selection (or no product uuid)
            return asked_at, None
        raise
    if not isinstance(product, dict) or product.get("uuid") != change.uuid:
        return asked_at, None  # an answer that is no such product: nothing to keep of it
    return asked_at, product
