"""The sync feature's objects, built once in init_app(), for the request or job at hand."""

from __future__ import annotations

from celery import Celery
from flask import current_app

from .changes import Changes
from .settings import SyncSettings
from .store import SyncStore

SETTINGS = "sync.settings"
STORE = "sync.store"
CHANGES = "sync.changes"
CELERY = "celery"  # as in Flask's Celery example


def settings() -> SyncSettings:
    """The feature's settings."""
    return current_app.extensions[SETTINGS]  # type: ignore[no-any-return]


def store() -> SyncStore:
    """Where each PIM's sync stands, and the products it copied."""
    return current_app.extensions[STORE]  # type: ignore[no-any-return]


def changes() -> Changes:
    """The single products waiting to be read again (events, actions)."""
    return current_app.extensions[CHANGES]  # type: ignore[no-any-return]


def celery() -> Celery:
    """The App's Celery."""
    return current_app.extensions[CELERY]
