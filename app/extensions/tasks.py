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


def register_task(celery: Celery) -> None:
    celery.task(name=REGISTER)(register_job)


def queue_register(pim_url: str, base: str) -> None:
    """Have a worker place the App's extensions in the PIM (pointing at `base`)."""

    def send() -> None:  # once the page's answer is sent
        try:
            send_job(REGISTER, [pim_url, base])
        except BrokerDown:
            log.warning("extensions not queued pim=%s: the broker does not answer", pim_url)

    after_response(send)


def register_job(pim_url: str, base: str) -> int:
    connection = core.store().connection(pim_url)
    if connection is None or connection.revoked:
        return 0
    try:
        return register(current.store(), core.app_api(pim_url), base, catalogs.settings().name)
    except AppError as error:  # a missing scope (403), the PIM down: the next connection retries
        log.warning("extensions not registered pim=%s: %s", pim_url, error.message)
        return 0
