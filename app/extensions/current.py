"""The extensions feature's objects, built once in init_app(), for the request or job at hand."""

from __future__ import annotations

from flask import current_app

from .store import ExtensionStore

STORE = "extensions.store"


def store() -> ExtensionStore:
    """The App's extensions in each PIM, and the iframe tokens used."""
    return current_app.extensions[STORE]  # type: ignore[no-any-return]
