"""The catalogs feature's objects, built once in init_app(), for the request at hand."""

from __future__ import annotations

from typing import Any

from flask import current_app

from .. import current
from .catalog import AppCatalog, CopyReader
from .settings import CatalogSettings
from .store import CatalogStore

SETTINGS = "catalogs.settings"
STORE = "catalogs.store"
SCHEMA = "catalogs.product_schema"
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
    copy: CopyReader | None = current_app.extensions.get(COPY)
    return AppCatalog(current.app_api(pim_url), store(), settings().name, schema(), copy)
