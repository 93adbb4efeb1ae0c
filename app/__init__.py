"""The Flask reference App for Akeneo PIM.

Run it with `flask --app app run` or `gunicorn 'app:create_app()'`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import current, routes, sync_views
from .akeneo import AkeneoClient
from .catalogs import load_schema
from .cli import register_cli
from .config import Settings
from .errors import register_error_handlers
from .flow import Flow
from .identity import IdTokenVerifier
from .logs import (
    configure_logging,
    record_pim_time,
    register_request_ids,
    register_server_timing,
)
from .security import register_security
from .store import Store
from .sync_store import SyncStore
from .tasks import celery_init_app

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the App: settings first, then the PIM client and the store, then the routes."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    settings = Settings.load(app.instance_path, overrides=config)
    configure_logging(settings.log_level)
    for warning in settings.warnings:
        log.warning("%s", warning)
    app.config.update(SECRET_KEY=settings.secret_key, TESTING=settings.testing)

    client = AkeneoClient(
        settings.client_id,
        settings.client_secret,
        timeout=settings.http_timeout,
        max_response_bytes=settings.max_response_mb * 1024 * 1024,
        on_call=record_pim_time if settings.server_timing else None,
    )
    store = Store(settings.database_url, settings.encryption_keys)
    store.create_schema()  # the sync's tables too (SyncStore's rows share the App's metadata)
    app.extensions[current.SETTINGS] = settings
    app.extensions[current.CLIENT] = client
    app.extensions[current.STORE] = store
    app.extensions[current.SCHEMA] = load_schema()  # what the App asks of each product
    app.extensions[current.SYNC_STORE] = SyncStore(store.engine)
    celery_init_app(app, settings)
    app.extensions[current.FLOW] = Flow(settings, client, IdTokenVerifier(client.public_key), store)

    register_security(app, settings)
    register_request_ids(app, trust_incoming=settings.trusted_proxies > 0)
    if settings.server_timing:
        register_server_timing(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(sync_views.bp)
    register_error_handlers(app)
    register_cli(app)
    return app
