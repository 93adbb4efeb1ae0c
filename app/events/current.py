"""The events feature's objects, built once in init_app(), for the request or job at hand."""

from __future__ import annotations

from flask import current_app

from .settings import EventSettings
from .store import EventStore

SETTINGS = "events.settings"
STORE = "events.store"


def settings() -> EventSettings:
    """The feature's settings."""
    return current_app.extensions[SETTINGS]  # type: ignore[no-any-return]


def store() -> EventStore:
    """Each PIM's subscription, and the events already taken."""
    return current_app.extensions[STORE]  # type: ignore[no-any-return]
