"""The events feature's jobs, on the sync's Celery workers: subscribing takes a few calls to the
platform (never inside the user's callback), and forgetting a deleted App's PIM is a job too."""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import OperationalError as BrokerDown

from .. import current as core
from ..catalogs import current as catalogs
from ..features import after_response, public_base
from ..sync import current as sync
from ..sync.tasks import queue_sync, send_job
from . import current
from .store import FAILED, REVOKED, SUBSCRIBING, SUSPENDED
from .subscribe import platform_status, subscribe, unsubscribe, webhook_base

log = logging.getLogger(__name__)

SUBSCRIBE = "app.events.tasks.subscribe"
FORGET = "app.events.tasks.forget"
TRIM = "app.events.tasks.trim"
CATCH_UP = "app.events.tasks.catch_up"
CHECK = "app.events.tasks.check"
TRIM_SECONDS = 3600.0
#: how often the platform is asked whether each subscription delivers (one call per PIM): an
#: App that was down long enough finds its subscription suspended, and its events lost
CHECK_SECONDS = 300.0
CATCH_UP_TRIES = 60  # a catch-up waits for a run in progress 10 s at a time, 10 minutes at most


def register(celery: Celery) -> None:
    """Add the feature's jobs to the App's Celery, and the hourly trim of event ids."""
    celery.task(name=SUBSCRIBE)(subscribe_job)
    celery.task(name=FORGET)(forget_job)
    celery.task(name=TRIM)(trim_job)
    celery.task(name=CATCH_UP)(catch_up_job)
    celery.task(name=CHECK)(check_job)
    celery.conf.beat_schedule["events-trim"] = {"task": TRIM, "schedule": TRIM_SECONDS}
    celery.conf.beat_schedule["events-check"] = {"task": CHECK, "schedule": CHECK_SECONDS}


def queue_subscribe(pim_url: str, base: str | None) -> None:
    """Have a worker subscribe the App to the PIM's events (the page says it meanwhile)."""
    current.store().set_state(pim_url, SUBSCRIBING)

    def send() -> None:  # once the page's answer is sent
        try:
            send_job(SUBSCRIBE, [pim_url, base])
        except BrokerDown:
            reason = "The job queue did not answer: press Subscribe again once the workers run."
            current.store().set_state(pim_url, FAILED, reason)

    after_response(send)


def queue_forget(pim_url: str) -> None:
    """Have a worker forget the PIM (BrokerDown when the queue does not answer)."""
    send_job(FORGET, [pim_url])


def queue_catch_up(pim_url: str) -> None:
    """Have the copy read what changed while no event came (once the answer is sent)."""

    def send() -> None:
        try:
            send_job(CATCH_UP, [pim_url, 0])
        except BrokerDown:  # the next periodic sync reads it all the same
            log.warning("catch-up not queued pim=%s: the broker does not answer", pim_url)

    after_response(send)


def catch_up_job(pim_url: str, tries: int) -> bool:
    """A job: an incremental sync of what changed while events were lost (a suspension, a
    revocation, an App down for long). A run already in progress may have read those products'
    pages before they changed: this waits for it to end, then queues its own."""
    connection = core.store().connection(pim_url)
    if connection is None or connection.revoked:
        return False
    status = sync.store().status(pim_url)
    if status is None or not status.has_copy_of(catalogs.store().catalog_id(pim_url)):
        return False  # no copy of this catalog yet: its first sync reads it all anyway
    if queue_sync(pim_url):
        log.info("events resumed pim=%s: an incremental sync reads what changed meanwhile", pim_url)
        return True
    if tries < CATCH_UP_TRIES:
        send_job(CATCH_UP, [pim_url, tries + 1], countdown=10)
    return False


def check_job() -> int:
    """The periodic check: ask the platform how each live subscription is; one that it
    suspended or revoked (while the App was down, its notice lost) is made again, and the copy
    catches up. How many were made again."""
    made_again = 0
    for pim_url in current.store().live_pims():
        connection = core.store().connection(pim_url)
        if connection is None or connection.revoked:
            continue
        status = platform_status(
            current.store(), core.client(), current.settings(), pim_url, connection.access_token
        )
        if status in (SUSPENDED, REVOKED, "deleted", "missing"):
            log.warning("event subscription found %s pim=%s: subscribing again", status, pim_url)
            queue_subscribe(pim_url, webhook_base(current.settings(), public_base()))
            made_again += 1
    return made_again


def subscribe_job(pim_url: str, base: str | None) -> str:
    connection = core.store().connection(pim_url)
    if connection is None or connection.revoked:
        current.store().set_state(pim_url, FAILED, "The App was disconnected: connect it again.")
        return "disconnected"
    email = connection.user.email if connection.user else None
    try:
        return subscribe(
            current.store(),
            core.client(),
            current.settings(),
            pim_url,
            connection.access_token,
            base,
            email,
            on_gap=lambda: queue_catch_up(pim_url),
        )
    except Exception as error:  # a bug, an answer with no id, the database refused a write
        # never "subscribing" for ever: the page would hide Subscribe again
        log.exception("event subscription failed pim=%s", pim_url)
        reason = (
            f"The subscription stopped on an unexpected error ({type(error).__name__}): press "
            "Subscribe again. The App's log has the details."
        )
        current.store().set_state(pim_url, FAILED, reason)
        return FAILED


def forget_job(pim_url: str) -> bool:
    """The App was deleted in that PIM: forget it, as `akeneo forget` does."""
    forgotten = core.forget(pim_url)
    current.store().forget(pim_url)  # the row of a PIM whose connection was gone already
    log.info("pim forgotten on app.deleted pim=%s found=%s", pim_url, forgotten)
    return forgotten


def trim_job() -> None:
    current.store().trim()


__all__ = ["queue_forget", "queue_subscribe", "register", "unsubscribe"]
