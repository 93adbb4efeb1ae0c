"""The objects create_app() builds once per App, for the request or CLI command at hand."""

from __future__ import annotations

from flask import current_app

from . import signals
from .akeneo import AkeneoClient
from .api import PimApi
from .config import Settings
from .db import Database
from .flow import Flow
from .store import Store
from .tokens import AppToken

# keys in app.extensions
SETTINGS = "akeneo_settings"
CLIENT = "akeneo_client"
DATABASE = "akeneo_database"
STORE = "akeneo_store"
FLOW = "akeneo_flow"


def settings() -> Settings:
    """The App's settings."""
    return current_app.extensions[SETTINGS]  # type: ignore[no-any-return]


def client() -> AkeneoClient:
    """The PIM client (one pooled HTTP session per process)."""
    return current_app.extensions[CLIENT]  # type: ignore[no-any-return]


def database() -> Database:
    """The App's database (its engine)."""
    return current_app.extensions[DATABASE]  # type: ignore[no-any-return]


def store() -> Store:
    """The core's store: connections, users, sessions."""
    return current_app.extensions[STORE]  # type: ignore[no-any-return]


def flow() -> Flow:
    """The activation flow."""
    return current_app.extensions[FLOW]  # type: ignore[no-any-return]


def app_api(pim_url: str) -> PimApi:
    """The REST API of `pim_url` with the App token stored for it (a 401 marks it revoked, and
    tells the features: `signals.pim_disconnected`)."""
    token = AppToken(store(), pim_url, on_revoked=_revoked)
    return PimApi(pim_url, token, client())


def _revoked(pim_url: str) -> None:
    signals.disconnected(pim_url, forgotten=False)


def forget(pim_url: str) -> bool:
    """Forget `pim_url` entirely (`akeneo forget`, or the PIM said the App was deleted there):
    the features first (they may still use the token to undo what they made there), then the
    connection, its users and sessions. False when no connection to it is stored."""
    if store().connection(pim_url) is None:
        return False
    signals.disconnected(pim_url, forgotten=True)
    store().forget(pim_url)
    store().close_sessions_of(pim_url)
    return True
