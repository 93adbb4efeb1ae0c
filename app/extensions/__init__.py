"""UI extensions: the App's own action and product tab inside the PIM's screens.

Builds on the sync: when a PIM is connected (and its catalog found), a worker places the App's
extensions there with the `manage_extensions` scope, each with its own secret: "Sync with <the
App>" in the product grid and on a product page (a signed POST: the App reads those products
again), and a product tab framing the App's view of the product (a JWT per view). See the
README's "Inside the PIM" section.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from .. import current as core
from ..catalogs import catalog_found
from ..features import pim_disconnected, public_base, require_scopes
from ..sync import current as sync
from . import current
from .register import unregister
from .store import ExtensionStore
from .tasks import queue_register, register_task
from .views import bp

__all__ = ["init_app"]

SCOPES = ("manage_extensions",)
NO_PUBLIC_URL = (
    "set AKENEO_PUBLIC_URL to the App's https address (the ngrok URL), restart it and connect "
    "again: the PIM frames the App's tab and posts its actions there"
)

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Plug the extensions feature into the App (after the sync, whose workers apply actions)."""
    store = app.extensions[core.STORE]
    app.extensions[current.STORE] = ExtensionStore(store.engine, store.encryption)
    require_scopes(app, SCOPES)
    register_task(app.extensions[sync.CELERY])
    app.register_blueprint(bp)
    catalog_found.connect(_register, sender=app)
    pim_disconnected.connect(_unregister, sender=app)


def _register(app: Flask, *, pim_url: str, **_: Any) -> None:
    base = public_base()
    if base:
        queue_register(pim_url, base)
    else:
        log.warning("extensions not placed pim=%s: %s", pim_url, NO_PUBLIC_URL)


def _unregister(app: Flask, *, pim_url: str, forgotten: bool, **_: Any) -> None:
    if not forgotten:
        return  # disconnected in the PIM: the PIM removed the App's extensions with it
    connection = core.store().connection(pim_url)
    api = core.app_api(pim_url) if connection and not connection.revoked else None
    unregister(current.store(), pim_url, api)
