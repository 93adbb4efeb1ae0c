"""Events: product changes pushed by Akeneo's Event Platform reach the copy within seconds.

Builds on the sync: when a PIM is connected and its catalog found, a worker subscribes the App
to that PIM's product events (and `app.deleted`); the webhook (`POST /events`) checks each
delivery's signature and notes the product for the sync's workers, which read it again from the
catalog. The periodic sync stays as the safety net. See the README's "Live changes" section.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from .. import current as core
from ..catalogs import catalog_found
from ..cli import add_commands
from ..features import Panel, add_panel, pim_disconnected, public_base
from ..sync import current as sync
from . import current
from .cli import events, rotate_event_secret
from .settings import EventSettings
from .store import EventStore
from .subscribe import mark_revoked, unsubscribe, webhook_base
from .tasks import queue_subscribe, register
from .views import bp, panel

__all__ = ["init_app"]

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Plug the events feature into the App (after the sync, whose workers apply the changes)."""
    settings = EventSettings.from_env(app.extensions[core.SETTINGS].env)
    app.extensions[current.SETTINGS] = settings
    store = app.extensions[core.STORE]
    app.extensions[current.STORE] = EventStore(store.engine, store.encryption)
    register(app.extensions[sync.CELERY])
    app.register_blueprint(bp)
    add_commands(app, events, rotate_event_secret)
    add_panel(app, Panel("events/panel.html", panel))
    catalog_found.connect(_subscribe, sender=app)
    pim_disconnected.connect(_unsubscribe, sender=app)


def _subscribe(app: Flask, *, pim_url: str, **_: Any) -> None:
    queue_subscribe(pim_url, webhook_base(current.settings(), public_base()))


def _unsubscribe(app: Flask, *, pim_url: str, forgotten: bool, **_: Any) -> None:
    if not forgotten:  # disconnected in the PIM: the platform revoked the subscription with it
        mark_revoked(current.store(), pim_url)
        return
    connection = core.store().connection(pim_url)
    token = connection.access_token if connection and not connection.revoked else None
    unsubscribe(current.store(), core.client(), current.settings(), pim_url, token)
