"""The sync's jobs on Celery, the Flask way (Flask's `examples/celery`): thin tasks in the App.

Workers and beat start from `make_celery.py`. The broker is CELERY_BROKER_URL (Redis in production)
or, unset, the App's own database through kombu's SQL transport, so a laptop needs nothing more.
Jobs are acknowledged late and every step saves its place, so a job lost with its worker is only a
delay: a sweep every 15 s (AKENEO_SYNC_SWEEP) queues again the runs whose worker stopped renewing
its lease (20 s: AKENEO_SYNC_LEASE), on any broker. On Redis the visibility timeout is 120 s (not
the hour of Redis's default): a job is at most one step (15 s of reading, plus a page), and a job
that outlives its worker comes back within two minutes even without beat.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import Celery, Task
from flask import Flask
from kombu.exceptions import OperationalError as BrokerDown
from kombu.transport import sqlalchemy as kombu_sql
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SADeprecationWarning

from .. import current as core
from ..catalogs import current as catalogs
from ..db import SqliteConnection
from ..errors import AppError
from ..features import after_response
from . import change_job, changes, current
from .settings import SyncSettings
from .steps import Outcome, StepResult, request_sync, requeue_stalled, step

log = logging.getLogger(__name__)

# kombu's SQL transport declares a relationship lazy="noload", which SQLAlchemy 2.1 deprecates; it
# never loads it, so the warning (printed at every start) says nothing to the App's users
warnings.filterwarnings("ignore", "The ``noload`` loader strategy", SADeprecationWarning)

STEP = "app.sync.tasks.sync_step"
APPLY = "app.sync.tasks.apply_changes"
SYNC_ALL = "app.sync.tasks.sync_all"
SWEEP = "app.sync.tasks.sweep"
SQL_POLLING_SECONDS = 0.2
KEEP_DELIVERED = timedelta(hours=1)  # kombu's SQL transport keeps delivered messages: trimmed


def celery_init_app(app: Flask, settings: SyncSettings) -> Celery:
    """The App's Celery: tasks run inside the App's context, configured from its settings."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask, set_as_current=False)
    database_url = app.extensions[core.SETTINGS].database_url
    celery.conf.update(celery_config(settings, database_url, app.instance_path))
    if settings.broker_url is None:
        # kombu's SQL transport polls for jobs every second, and gives every transport option to
        # create_engine(): its class is the one place to say 0.2 s, so that a change an event
        # pushed reaches the copy well within a second (Redis hands jobs over as they come)
        kombu_sql.Transport.polling_interval = SQL_POLLING_SECONDS
    celery.task(name=STEP)(sync_step)
    celery.task(name=APPLY)(apply_changes)
    celery.task(name=SYNC_ALL)(sync_all)
    celery.task(name=SWEEP)(sweep)
    app.extensions[current.CELERY] = celery
    # `celery beat` writes its schedule there: a fresh checkout has no instance folder yet
    os.makedirs(app.instance_path, exist_ok=True)
    return celery


def celery_config(settings: SyncSettings, database_url: str, instance_path: str) -> dict[str, Any]:
    """Celery's settings: late acks, one job at a time per worker slot, bounded publishing."""
    broker = settings.broker_url or f"sqla+{database_url}"
    transport: dict[str, Any] = {}
    if broker.startswith(("redis://", "rediss://")):
        transport = {"visibility_timeout": 120}
    elif broker.startswith("sqla+sqlite:"):  # kombu gives these to its create_engine()
        transport = {"connect_args": {"factory": SqliteConnection}}
    schedule: dict[str, Any] = {"sweep": {"task": SWEEP, "schedule": float(settings.sweep)}}
    if settings.interval:
        schedule["sync-all"] = {"task": SYNC_ALL, "schedule": float(settings.interval)}
    return {
        "broker_url": broker,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,  # a page that queues a job waits ~5 s at worst
        "task_ignore_result": True,
        # a job is acknowledged when it is done: the broker gives a dead worker's job to another
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # no remote control (the App never uses it): its pub/sub channel is what kills a
        # worker on Redis when the broker restarts (kombu 5.7: "'NoneType' object has no
        # attribute 'hostname'"), the job queue itself reconnects
        "worker_enable_remote_control": False,
        "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 1},
        "beat_schedule": schedule,
        "beat_schedule_filename": f"{instance_path}/celerybeat-schedule",
        "worker_hijack_root_logger": False,  # the App's logging (no secrets, request ids)
        "timezone": "UTC",
    }


def send_job(
    name: str, args: list[Any], *, countdown: float | None = None, retry: bool = False
) -> None:
    """Queue a job on the App's broker (BrokerDown when it does not answer): every feature's
    jobs go through here. Kombu's SQL transport declares its queue on first use, and two
    processes doing so at the same instant race (an IntegrityError): the second try finds it."""
    for attempt in (1, 2):
        try:
            current.celery().send_task(name, args=args, countdown=countdown, retry=retry)
            return
        except IntegrityError:
            if attempt == 2:
                raise


def enqueue(pim_url: str, run_id: str, token: str | None, delay: float = 0.0) -> None:
    """Queue a step of a run on the App's broker (to start after `delay` seconds); a broker that
    does not answer only delays it (the sweep queues the run again once the broker is back)."""
    try:
        send_job(STEP, [pim_url, run_id, token], countdown=delay or None, retry=True)
    except BrokerDown as error:
        log.warning("sync not queued pim=%s: the broker does not answer (%s)", pim_url, error)


def declare_queue(celery: Celery) -> None:
    """Declare the jobs' queue on the broker, once, before workers start (kombu's SQL transport
    refuses two declarations made at the same instant: a second worker would not start)."""
    with celery.connection_for_write() as connection:
        celery.amqp.queues[celery.conf.task_default_queue](connection.default_channel).declare()


def queue_sync(pim_url: str, *, full: bool = False) -> bool:
    """Queue a sync of the PIM's catalog (known to the App); False if one is on already.

    The run is recorded at once (the page says "queued"); its job goes out once the page's
    answer is sent, and were it lost, the sweep queues the run again."""
    catalog_id = catalogs.store().catalog_id(pim_url)
    if not catalog_id:
        return False

    def enqueue_after_response(pim_url: str, run_id: str, token: str | None) -> None:
        after_response(lambda: enqueue(pim_url, run_id, token))

    return request_sync(current.store(), pim_url, catalog_id, enqueue_after_response, full=full)


def sync_step(pim_url: str, run_id: str, token: str | None = None) -> str:
    """A job: read pages of a run for a while, then queue the next step if there is more."""
    result: StepResult = step(current.store(), core.app_api(pim_url), pim_url, run_id, token)
    if result.outcome == Outcome.MORE:
        enqueue(pim_url, run_id, result.token, result.delay)
    return result.outcome


class QueueDown(Exception):
    """The broker does not answer, or too many changes wait: the caller asks to come back."""


def queue_changes(
    pim_url: str,
    products: dict[str, bool],
    within: Callable[[Connection], None] | None = None,
) -> None:
    """Have the sync's workers read these products again, or drop them ({uuid: deleted}), within
    seconds. Noted in the database first: once this returns, nothing is lost (a job lost on the
    way is queued again by the sweep). QueueDown when the queue is full, or when the broker did
    not take the job (the changes are kept: the sweep queues them once it answers).

    `within(db)` writes more in the same transaction (see Changes.note)."""
    try:
        first = current.changes().note(pim_url, products, within)
    except changes.TooManyWaiting:
        raise QueueDown(f"Over {changes.MAX_WAITING} product changes wait for {pim_url}.") from None
    if first:
        try:
            send_job(APPLY, [pim_url])
        except BrokerDown:
            log.warning("changes not queued pim=%s: the broker does not answer", pim_url)
            raise QueueDown("The job queue does not answer.") from None


def apply_changes(pim_url: str) -> int:
    """A job: read again (or drop) the PIM's waiting products; queue the next job if more wait."""
    catalog_id = catalogs.store().catalog_id(pim_url)
    if core.store().is_revoked(pim_url) is not False:  # gone or revoked (nothing decrypted)
        current.changes().forget(pim_url)  # nothing can be read there: the next connect syncs
        return 0
    applied, more = change_job.apply(current.changes(), core.app_api(pim_url), catalog_id)
    log.info("changes applied pim=%s count=%d more=%s", pim_url, applied, more)
    if more:
        send_job(APPLY, [pim_url], countdown=5)
    return applied


def sync_all() -> int:
    """The periodic job: an incremental sync of every connected PIM's catalog (a full one
    where the App's product schema changed since it was pushed: it pushes it first)."""
    started = 0
    for connection in core.store().connections():
        if connection.revoked:
            continue
        try:
            catalogs.catalog(connection.pim_url).push_schema_if_changed()
        except AppError as error:  # the PIM down: the sync says so, the schema goes next time
            log.warning("schema not pushed pim=%s reason=%s", connection.pim_url, error.message)
        if queue_sync(connection.pim_url):
            started += 1
    return started


def sweep() -> int:
    """Every sweep (15 s): queue again the runs and the changes nobody holds; trim the SQL broker's
    delivered messages."""
    count = requeue_stalled(current.store(), enqueue)
    for pim_url in current.changes().waiting_pims():
        send_job(APPLY, [pim_url])
    if current.settings().broker_url is None:
        with core.database().engine.begin() as db:
            # kombu stamps messages with the local time, without a zone
            db.execute(
                text("DELETE FROM kombu_message WHERE visible = :no AND timestamp < :before"),
                {"no": False, "before": datetime.now() - KEEP_DELIVERED},
            )
    return count
