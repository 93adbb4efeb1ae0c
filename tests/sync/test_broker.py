"""The default broker: kombu's SQL transport on the App's own SQLite file."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from app.sync import current


def test_the_sql_broker_is_set_up_as_the_apps_database(app: Flask) -> None:
    # kombu makes its own engine: with SQLite's default (FULL) every queued job waited for the
    # disk, twice as long as the job itself
    with app.app_context(), current.celery().connection_for_write() as connection:
        session = connection.default_channel.session
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 5000
