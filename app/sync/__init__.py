"""The sync: a copy of each PIM's catalog in the App's database, kept by Celery workers.

Builds on the catalogs feature: a sync starts when a PIM's catalog is found enabled, and the
products page reads the copy once a sync finished. See the README's "Sync" section.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from .. import current as core
from ..budget import RedisBudget, Shared, hold_for
from ..catalogs import catalog_found, schema_changed, use_copy
from ..catalogs.catalog import CatalogInfo
from ..cli import add_commands
from ..features import Panel, add_panel, pim_disconnected
from . import current
from .changes import Changes
from .cli import sync
from .reader import CopyReader
from .settings import SyncSettings
from .store import SyncStore
from .tasks import QueueDown, celery_init_app, queue_changes, queue_sync
from .views import bp, panel

__all__ = ["QueueDown", "init_app", "queue_changes"]


def init_app(app: Flask) -> None:
    """Plug the sync feature into the App (after the catalogs feature, which it builds on)."""
    settings = SyncSettings.from_env(app.extensions[core.SETTINGS].env)
    store = SyncStore(app.extensions[core.DATABASE].engine, timedelta(seconds=settings.lease))
    app.extensions[current.SETTINGS] = settings
    app.extensions[current.STORE] = store
    app.extensions[current.CHANGES] = Changes(store.engine)
    celery_init_app(app, settings)
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")):
        # the calls in flight, counted where the jobs wait
        limits = app.extensions[core.SETTINGS]
        counted = RedisBudget(
            settings.broker_url, limits.max_in_flight, hold_for(limits.http_timeout)
        )
        app.extensions[core.CLIENT].budget = Shared(counted, limits.max_in_flight)
    use_copy(app, CopyReader(store))
    app.register_blueprint(bp)
    add_commands(app, sync)
    add_panel(app, Panel("sync/panel.html", panel))
    catalog_found.connect(_first_sync, sender=app)
    schema_changed.connect(_read_everything, sender=app)
    pim_disconnected.connect(_forget, sender=app)


def _first_sync(app: Flask, *, pim_url: str, catalog: CatalogInfo, **_: Any) -> None:
    if catalog.enabled:  # a new catalog is disabled: the connected page queues one once enabled
        queue_sync(pim_url)


def _read_everything(app: Flask, *, pim_url: str, **_: Any) -> None:
    queue_sync(pim_url, full=True)  # the new fields are in no product's copy yet


def _forget(app: Flask, *, pim_url: str, forgotten: bool, **_: Any) -> None:
    if forgotten:  # a revoked PIM keeps its copy until it is connected again or forgotten
        current.store().forget(pim_url)
        current.changes().forget(pim_url)
