"""The objects create_app() builds once per App, for the request or CLI command at hand."""

from __future__ import annotations

from flask import current_app

from .akeneo import AkeneoClient
from .api import PimApi
from .catalogs import Catalogs
from .config import Settings
from .flow import Flow
from .store import Store
from .sync_store import SyncStore
from .tokens import AppToken

# keys in app.extensions
SETTINGS = "akeneo_settings"
CLIENT = "akeneo_client"
STORE = "akeneo_store"
FLOW = "akeneo_flow"
SCHEMA = "akeneo_product_schema"
SYNC_STORE = "akeneo_sync_store"
CELERY = "celery"  # as in Flask's Celery example


def settings() -> Settings:
    """The App's settings."""
    return current_app.extensions[SETTINGS]  # type: ignore[no-any-return]


def client() -> AkeneoClient:
    """The PIM client (one pooled HTTP session per process)."""
    return current_app.extensions[CLIENT]  # type: ignore[no-any-return]


def store() -> Store:
    """The App's store."""
    return current_app.extensions[STORE]  # type: ignore[no-any-return]


def sync_store() -> SyncStore:
    """Where each PIM's sync stands, and the products it copied."""
    return current_app.extensions[SYNC_STORE]  # type: ignore[no-any-return]


def flow() -> Flow:
    """The activation flow."""
    return current_app.extensions[FLOW]  # type: ignore[no-any-return]


def app_api(pim_url: str) -> PimApi:
    """The REST API of `pim_url` with the App token stored for it (a 401 marks it revoked)."""
    return PimApi(pim_url, AppToken(store(), pim_url), client())


def catalogs(pim_url: str) -> Catalogs:
    """The App's catalog in `pim_url` (its API with the App token, the store, the schema)."""
    schema = current_app.extensions[SCHEMA]
    return Catalogs(app_api(pim_url), store(), settings().catalog_name, schema)
