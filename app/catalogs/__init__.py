"""Catalogs for Apps: the App's catalog in each PIM, its products page and images.

The App creates a catalog in every PIM it is connected to and pushes its product mapping schema
(`product_schema.json`, beside this file); a PIM user enables it, chooses its products and maps
each schema target to an attribute; the App reads exactly those products, shaped as its schema
says (mapped products). See the README's "Catalogs" section.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app

from .. import current as core
from ..cli import add_commands
from ..errors import AppError
from ..features import Panel, add_panel, pim_connected, pim_disconnected, require_scopes
from . import current
from .catalog import CATALOG_SCOPES, CatalogInfo, ProductCopy, hash_of, load_schema
from .cli import catalogs, products
from .settings import CatalogSettings
from .signals import catalog_found, schema_changed
from .store import CatalogStore
from .views import bp, panel

__all__ = ["catalog_found", "init_app", "load_schema", "schema_changed", "use_copy", "use_schema"]

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Plug the catalogs feature into the App."""
    settings = CatalogSettings.from_env(app.extensions[core.SETTINGS].env)
    app.extensions[current.SETTINGS] = settings
    app.extensions[current.STORE] = CatalogStore(app.extensions[core.DATABASE].engine)
    use_schema(app, load_schema())
    require_scopes(app, CATALOG_SCOPES)
    app.register_blueprint(bp)
    add_commands(app, catalogs, products)
    add_panel(app, Panel("catalogs/panel.html", panel))
    pim_connected.connect(_find_or_create, sender=app)
    pim_disconnected.connect(_forget, sender=app)


def use_schema(app: Flask, schema: dict[str, Any]) -> None:
    """The product mapping schema the App pushes (read from its file at start), and its hash
    (what tells a PIM's catalog has an older one), computed once."""
    app.extensions[current.SCHEMA] = schema
    app.extensions[current.SCHEMA_HASH] = hash_of(schema)


def use_copy(app: Flask, copy: ProductCopy) -> None:
    """Read the products pages from a local copy when `copy` has one (the sync feature)."""
    app.extensions[current.COPY] = copy


def _find_or_create(app: Flask, *, pim_url: str, **_: Any) -> None:
    try:
        found: CatalogInfo = current.catalog(pim_url).ensure()
    except AppError as error:
        # never undoes the connection: the page says what failed and tries again
        log.warning("catalog not found or created pim=%s reason=%s", pim_url, error.message)
        return
    catalog_found.send(current_app._get_current_object(), pim_url=pim_url, catalog=found)  # type: ignore[attr-defined]


def _forget(app: Flask, *, pim_url: str, forgotten: bool, **_: Any) -> None:
    if forgotten:  # a disconnect deletes the PIM's catalogs; the row is found stale then
        current.store().forget(pim_url)
