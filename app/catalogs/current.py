"""The catalogs feature's objects, built once in init_app(), for the request at hand."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, has_request_context

from .. import current
from .catalog import AppCatalog, ProductCopy
from .settings import CatalogSettings
from .signals import schema_changed
from .store import CatalogStore

SETTINGS = "catalogs.settings"
STORE = "catalogs.store"
SCHEMA = "catalogs.product_schema"
SCHEMA_HASH = "catalogs.product_schema_hash"
COPY = "catalogs.copy"


def settings() -> CatalogSettings:
    """The feature's settings."""
    return current_app.extensions[SETTINGS]  # type: ignore[no-any-return]


def store() -> CatalogStore:
    """Which catalog is the App's in each PIM."""
    return current_app.extensions[STORE]  # type: ignore[no-any-return]


def schema() -> dict[str, Any]:
    """The product mapping schema the App pushes to every PIM."""
    return current_app.extensions[SCHEMA]  # type: ignore[no-any-return]


def catalog(pim_url: str) -> AppCatalog:
    """The App's catalog in `pim_url` (its API with the App token, the store, the schema)."""
    copy: ProductCopy | None = current_app.extensions.get(COPY)
    return AppCatalog(
        current.app_api(pim_url),
        store(),
        settings().name,
        schema(),
        copy,
        _schema_pushed,
        current_app.extensions[SCHEMA_HASH],
    )


def _schema_pushed(pim_url: str) -> None:
    schema_changed.send(current_app._get_current_object(), pim_url=pim_url)  # type: ignore[attr-defined]
    if has_request_context():
        flash(SCHEMA_CHANGED)


SCHEMA_CHANGED = (
    "The App's product fields changed (product_schema.json): the App sent them to your PIM and "
    "reads every product again. Map the new fields in your PIM (Configure in your PIM), then "
    "press Sync now."
)
