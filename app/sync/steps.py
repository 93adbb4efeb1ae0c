"""The sync's steps: plain functions over a PIM's API and the sync store, a page at a time.

They know nothing of Celery: `tasks.py` runs step() as a job and queues the next one while
step() says there is more to do. How a run goes is told in the README ("Sync").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from ..api import ListUnavailable, PimApi, read_ahead
from ..catalogs.catalog import catalog_path, explain, explain_unusable
from ..errors import AppError, PimError, PimHttpError, TokenRevoked
from .status import FAILED, STOPPED
from .store import LeaseLost, PageRefused, Run, SyncStore

log = logging.getLogger(__name__)

STEP_SECONDS = 15.0  # one job reads pages for this long, then queues the next one
#: a step's calls end by then, retries and waits included (Redis redelivers after 120 s)
STEP_DEADLINE = 45.0
MAX_PAUSE = 90.0  # seconds the next step waits at most after a 429
UUIDS_PER_PAGE = 1000  # the most product-uuids allows (§1.9)
PRODUCTS_PER_PAGE = 100  # the most mapped-products allows (§1.12)

#: queue a step of a run: (pim_url, run_id, lease token or None)
Enqueue = Callable[[str, str, str | None], None]


class Outcome(StrEnum):
    """What one step of a run came to."""

    MORE = "more"  # the run goes on: queue the next step
    FINISHED = "finished"
    STOPPED = "stopped"  # a cause the user must remove (disabled, disconnected, …)
    FAILED = "failed"  # the PIM failed: the next run goes on from the cursor
    SKIPPED = "skipped"  # another worker holds the run, or it is over: a duplicate job


@dataclass(frozen=True)
class StepResult:
    """What one step did; `token` is set when the run goes on (the next job keeps the lease)."""

    outcome: Outcome
    token: str | None = None
    delay: float = 0.0  # seconds the next step waits (a PIM's Retry-After)


def request_sync(
    store: SyncStore, pim_url: str, catalog_id: str, enqueue: Enqueue, *, full: bool = False
) -> bool:
    """Queue a sync of the PIM's catalog; False when one is queued or running already."""
    run_id = store.request(pim_url, catalog_id, full=full)
    if run_id is None:
        return False
    log.info("sync queued pim=%s full=%s", pim_url, full)
    enqueue(pim_url, run_id, None)
    return True


def requeue_stalled(store: SyncStore, enqueue: Enqueue) -> int:
    """Queue again the runs whose worker died or whose job was lost; how many."""
    stalled = store.to_requeue()
    for pim_url, run_id in stalled:
        log.warning("sync taken up again pim=%s (its worker stopped answering)", pim_url)
        enqueue(pim_url, run_id, None)
    return len(stalled)


def step(
    store: SyncStore,
    api: PimApi,
    pim_url: str,
    run_id: str,
    token: str | None = None,
    *,
    seconds: float = STEP_SECONDS,
) -> StepResult:
    """Read pages of the run for about `seconds`, saving each one; say what comes next.

    A step ends within STEP_DEADLINE, its waits on the PIM included, well inside Redis's
    visibility timeout. A job whose run another worker holds, or that is no longer queued or
    running, does nothing ("skipped"): a job delivered twice never runs beside its twin.
    """
    run = store.acquire(pim_url, run_id, token)
    if run is None:
        return StepResult(Outcome.SKIPPED)
    try:
        with _lease_kept(store, run):
            return _read(store, api, run, time.monotonic() + seconds)
    except LeaseLost:
        log.warning("sync lease lost pim=%s: another worker goes on", pim_url)
        return StepResult(Outcome.SKIPPED)
    except TokenRevoked:
        return _end(store, run, STOPPED, "The App was disconnected in the PIM: connect it again.")
    except ListUnavailable as unusable:
        return _end(store, run, STOPPED, explain_unusable(unusable.reason))
    except PageRefused as refused:  # reading it again would loop again: the next run starts anew
        return _end(store, run, STOPPED, f"{refused} The next sync starts again.")
    except PimHttpError as error:
        if error.pim_status == 429:
            # the PIM asks to wait longer than the step may: the next job waits, not this one
            # (within Redis's visibility timeout, or it would deliver the waiting job again)
            delay = min(error.retry_after or MAX_PAUSE, MAX_PAUSE)
            store.pause(run, delay)
            return StepResult(Outcome.MORE, run.token, delay=delay)
        if error.pim_status == 404:
            message = "The App's catalog is no longer in the PIM: open the App to create it again."
            return _end(store, run, STOPPED, message)
        if error.pim_status == 403:
            return _end(store, run, STOPPED, explain(error))
        return _end(store, run, FAILED, f"{error.message} The next sync goes on from there.")
    except AppError as error:  # the PIM down, a timeout, a malformed answer
        return _end(store, run, FAILED, f"{error.message} The next sync goes on from there.")
    except Exception as error:  # a bug, or the database refused a write: never a wedged run
        log.exception("sync step failed pim=%s", pim_url)
        message = (
            f"The sync stopped on an unexpected error ({type(error).__name__}); the next sync "
            "starts again."
        )
        return _end(store, run, STOPPED, message)


def _end(store: SyncStore, run: Run, state: str, message: str) -> StepResult:
    store.end(run, state, message)
    return StepResult(Outcome.STOPPED if state == STOPPED else Outcome.FAILED)


def _read(store: SyncStore, api: PimApi, run: Run, deadline: float) -> StepResult:
    # every call of the step, its retries and waits included, ends by this time
    if run.phase in ("uuids", "recheck"):
        path = catalog_path(run.catalog_id, "product-uuids")
        listing = (
            api.resume(run.cursor, of=str, max_seconds=STEP_DEADLINE)
            if run.cursor
            else api.items(path, limit=UUIDS_PER_PAGE, of=str, max_seconds=STEP_DEADLINE)
        )
        for page in read_ahead(listing.pages()):
            store.save_uuids(run, page.items, page.next_path)
            if page.next_path and time.monotonic() > deadline:
                return StepResult(Outcome.MORE, run.token)
        if listing.cut:
            return StepResult(Outcome.MORE, run.token)
        run = replace(run, phase="products" if run.phase == "uuids" else "checked", cursor=None)
    if run.phase == "products":
        if run.cursor:
            listing = api.resume(run.cursor, max_seconds=STEP_DEADLINE)
        else:
            # a full run has no `since` (store.request and store.finish see to it)
            params = {"updated_after": atom(run.since)} if run.since else {}
            path = catalog_path(run.catalog_id, "mapped-products")
            listing = api.items(path, params, limit=PRODUCTS_PER_PAGE, max_seconds=STEP_DEADLINE)
        for page in read_ahead(listing.pages()):  # the next page comes while this one is saved
            _check_products(page.items, api.pim_url)
            store.save_products(run, page.items, page.next_path, page.asked_at)
            if page.next_path and time.monotonic() > deadline:
                return StepResult(Outcome.MORE, run.token)
        if listing.cut:
            return StepResult(Outcome.MORE, run.token)
    removed = store.finish(run)
    if removed is None:  # it reads everything, or the selection once more: the same run goes on
        return StepResult(Outcome.MORE, run.token)
    log.info("sync finished pim=%s removed=%d", run.pim_url, removed)
    return StepResult(Outcome.FINISHED)


def _check_products(items: list[object], pim_url: str) -> None:
    if not all(isinstance(item, dict) and isinstance(item.get("uuid"), str) for item in items):
        raise PimError("The PIM's mapped products have no uuid.", pim_url=pim_url)


def atom(moment: datetime) -> str:
    """The full ISO 8601 the PIM requires (`2024-03-01T00:00:00+00:00`), in UTC."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


@contextmanager
def _lease_kept(store: SyncStore, run: Run) -> Iterator[None]:
    """Renew the lease while the step waits on the PIM (a 429 may pause it for a minute)."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(store.lease.total_seconds() / 4):
            try:
                store.renew(run)
            except LeaseLost:
                return
            except Exception:  # the database blinked: the next renewal tries again
                log.warning("sync lease not renewed pim=%s", run.pim_url, exc_info=True)

    keeper = threading.Thread(target=renew, name="sync-lease", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
