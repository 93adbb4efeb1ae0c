"""The events feature's jobs, on the sync's Celery workers: subscribing takes a few calls to the
platform (never inside the user's callback), and forgetting a deleted App's PIM is a job too."""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import OperationalError as BrokerDown

from .. import current as core
from ..features import after_response
from ..sync.tasks import send_job
from . import current
from .store import FAILED, SUBSCRIBING
from .subscribe import subscribe, unsubscribe

log = logging.getLogger(__name__)

SUBSCRIBE = "app.events.tasks.subscribe"
FORGET = "app.events.tasks.forget"
TRIM = "app.events.tasks.trim"
TRIM_SECONDS = 3600.0


def register(celery: Celery) -> None:
    """Add the feature's jobs to the App's Celery, and the hourly trim of event ids."""
    celery.task(name=SUBSCRIBE)(subscribe_job)
    celery.task(name=FORGET)(forget_job)
    celery.task(name=TRIM)(trim_job)
    celery.conf.beat_schedule["events-trim"] = {"task": TRIM, "schedule": TRIM_SECONDS}


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


def subscribe_job(pim_url: str, base: str | None) -> str:
    connection = core.store().connection(pim_url)
    if connection is None or connection.revoked:
        current.store().set_state(pim_url, FAILED, "The App was disconnected: connect it again.")
        return "disconnected"
    email = connection.user.email if connection.user else None
    return subscribe(
        current.store(),
        core.client(),
        current.settings(),
        pim_url,
        connection.access_token,
        base,
        email,
    )


def forget_job(pim_url: str) -> bool:
    """The App was deleted in that PIM: forget it, as `akeneo forget` does."""
    forgotten = core.forget(pim_url)
    current.store().forget(pim_url)  # the row of a PIM whose connection was gone already
    log.info("pim forgotten on app.deleted pim=%s found=%s", pim_url, forgotten)
    return forgotten


def trim_job() -> None:
    current.store().trim()


__all__ = ["queue_forget", "queue_subscribe", "register", "unsubscribe"]
