"""How the sync's jobs are set up: the default broker, the lease and the sweep."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from app import create_app
from app.errors import ConfigError
from app.sync import current
from tests.pims import app_config


def test_the_sql_broker_is_set_up_as_the_apps_database(app: Flask) -> None:
    # kombu makes its own engine: with SQLite's default (FULL) every queued job waited for the
    # disk, twice as long as the job itself
    with app.app_context(), current.celery().connection_for_write() as connection:
        session = connection.default_channel.session
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 5000


def test_the_lease_and_the_sweep_come_from_the_environment(app: Flask, tmp_path: Path) -> None:
    with app.app_context():  # the defaults
        assert current.store().lease == timedelta(seconds=20)
        assert current.celery().conf.beat_schedule["sweep"]["schedule"] == 15
    tuned = create_app(app_config(tmp_path, AKENEO_SYNC_LEASE="6", AKENEO_SYNC_SWEEP="2"))
    with tuned.app_context():
        assert current.store().lease == timedelta(seconds=6)
        assert current.celery().conf.beat_schedule["sweep"]["schedule"] == 2
    with pytest.raises(ConfigError, match="AKENEO_SYNC_LEASE must be a number of seconds from 4"):
        create_app(app_config(tmp_path, AKENEO_SYNC_LEASE="1"))
    with pytest.raises(ConfigError, match="AKENEO_SYNC_SWEEP must be a number of seconds"):
        create_app(app_config(tmp_path, AKENEO_SYNC_SWEEP="often"))
