"""The extensions feature's objects, built once in init_app(), for the request or job at hand."""

from __future__ import annotations

from flask import current_app

from .store import ExtensionStore

STORE = "extensions.store"
PUBLIC_URL = "extensions.public_url"


def store() -> ExtensionStore:
    """The App's extensions in each PIM, and the iframe tokens used."""
    return current_app.extensions[STORE]  # type: ignore[no-any-return]


def public_url() -> str | None:
    """AKENEO_PUBLIC_URL: the App's public base, if set."""
    return current_app.extensions[PUBLIC_URL]  # type: ignore[no-any-return]
