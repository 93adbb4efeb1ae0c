"""The Flask reference App for Akeneo PIM: an activation core, and features that plug into it.

Run it with `flask --app app run` or `gunicorn 'app:create_app()'`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import current, routes
from .akeneo import AkeneoClient
from .budget import Shared, hold_for, shared_budget
from .catalogs import init_app as init_catalogs
from .cli import register_cli
from .config import Settings
from .db import Database, Encryption
from .errors import register_error_handlers
from .events import init_app as init_events
from .extensions import init_app as init_extensions
from .features import RunAfterResponse
from .flow import Flow
from .identity import IdTokenVerifier
from .logs import configure_logging, record_pim_time, register_request_ids, register_server_timing
from .security import register_security
from .store import Store
from .sync import init_app as init_sync

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the App: the core first, then each feature, then what the features added to."""
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
    database = Database(settings.database_url)
    # every process of the App shares one count of the calls in flight per PIM (the sync
    # feature moves it to Redis when that is its broker)
    hold = hold_for(settings.http_timeout)
    shared = shared_budget(database.engine, settings.max_in_flight, hold)
    client.budget = Shared(shared, settings.max_in_flight)
    app.extensions[current.SETTINGS] = settings
    app.extensions[current.CLIENT] = client
    app.extensions[current.DATABASE] = database
    app.extensions[current.STORE] = Store(database, Encryption(settings.encryption_keys))
    register_security(app, settings)
    app.wsgi_app = RunAfterResponse(app.wsgi_app)  # type: ignore[method-assign]
    register_request_ids(app, trust_incoming=settings.trusted_proxies > 0)
    if settings.server_timing:
        register_server_timing(app)
    app.register_blueprint(routes.bp)
    register_error_handlers(app)
    register_cli(app)

    # the features: delete a line (with app/<feature>/ and tests/<feature>/) to drop one
    init_catalogs(app)  # the App's catalog in each PIM: /products, /media
    init_sync(app)  # a copy of each catalog, kept by Celery workers: /sync
    init_events(app)  # product changes pushed by the Event Platform: /events
    init_extensions(app)  # the App's action and product tab inside the PIM: /extensions

    # what the features added to: their tables, the scopes they asked for
    database.create_schema()
    settings = app.extensions[current.SETTINGS]
    verifier = IdTokenVerifier(client.public_key)
    app.extensions[current.FLOW] = Flow(settings, client, verifier, app.extensions[current.STORE])
    return app
