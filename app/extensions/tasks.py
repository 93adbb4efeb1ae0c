"""The extensions feature's job, on the sync's Celery workers: registering takes a few calls to
the PIM, never inside the user's callback."""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import OperationalError as BrokerDown

from .. import current as core
from ..catalogs import current as catalogs
from ..errors import AppError
from ..features import after_response
from ..sync.tasks import send_job
from . import current
from .register import register

log = logging.getLogger(__name__)

REGISTER = "app.extensions.tasks.register"
TRIM = "app.extensions.tasks.trim"
TRIM_SECONDS = 3600.0


def register_task(celery: Celery) -> None:
    """Add the feature's jobs to the App's Celery, and the hourly trim of used token ids (not
    done by the tab's requests: one more write each)."""
    celery.task(name=REGISTER)(register_job)
    celery.task(name=TRIM)(trim_job)
    celery.conf.beat_schedule["extensions-trim"] = {"task": TRIM, "schedule": TRIM_SECONDS}


def queue_register(pim_url: str, base: str) -> None:
    """Have a worker place the App's extensions in the PIM (pointing at `base`)."""

    def send() -> None:  # once the page's answer is sent
        try:
            send_job(REGISTER, [pim_url, base])
        except BrokerDown:
            log.warning("extensions not queued pim=%s: the broker does not answer", pim_url)

    after_response(send)


def register_job(pim_url: str, base: str) -> int:
    if core.store().is_revoked(pim_url) is not False:  # gone or revoked (nothing decrypted)
        return 0
    try:
        return register(current.store(), core.app_api(pim_url), base, catalogs.settings().name)
    except AppError as error:  # a missing scope (403), the PIM down: the next connection retries
        log.warning("extensions not registered pim=%s: %s", pim_url, error.message)
        return 0


def trim_job() -> None:
    current.store().trim()
