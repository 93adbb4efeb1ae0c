"""The App's stores opened on a test database, as create_app() opens them."""

from __future__ import annotations

from app.db import Database, Encryption
from app.store import Store


def open_store(database_url: str, *keys: str) -> Store:
    """The core's store on `database_url`, every table of the App created; close it with
    `store.database.close()`."""
    database = Database(database_url)
    database.create_schema()
    return Store(database, Encryption(keys))
