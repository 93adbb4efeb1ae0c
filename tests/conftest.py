"""Fixtures: the App, local PIMs that answer its HTTP calls (tests/pims.py), and servers
(tests/servers.py). Each feature's tests sit in tests/<feature>/, beside its own fixtures."""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from app import create_app
from app.config import NAMES
from app.db import Database

from .browsers import browser, local, page  # noqa: F401 - fixtures
from .pims import FakePim, PimUser, app_config, make_pim, plug
from .servers import PostgresServer, RedisServer, postgres_bindir, unavailable


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the developer's own configuration (each feature's conftest
    clears the variables of that feature)."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


class ServerLikeClient(FlaskClient):
    """A test client that reads each answer whole and closes it, as gunicorn does: what the App
    does once an answer is sent (`features.after_response`) is done when a request returns."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """FlaskClient.open, buffered (the answer read and closed) unless told otherwise."""
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture(autouse=True)
def server_like_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test App's test_client() is a ServerLikeClient."""
    monkeypatch.setattr(Flask, "test_client_class", ServerLikeClient)


@pytest.fixture
def wire() -> Iterator[responses.RequestsMock]:
    """Every outbound HTTP call of the App goes here; an unexpected one fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def pim(wire: responses.RequestsMock) -> FakePim:
    """The PIM most tests connect to."""
    return plug(wire, make_pim("http://pim-a.test", USER_FIRSTNAME="Julia", USER_LASTNAME="Stark"))


@pytest.fixture
def pim_b(wire: responses.RequestsMock) -> FakePim:
    """A second PIM, with another user."""
    return plug(
        wire,
        make_pim(
            "http://pim-b.test",
            USER_ID="2",
            USER_FIRSTNAME="Peter",
            USER_LASTNAME="Parker",
            USER_EMAIL="peter@example.com",
        ),
    )


@pytest.fixture
def waits() -> list[float]:
    """The seconds the App's PIM client waited before its retries (recorded, not slept)."""
    return []


@pytest.fixture
def app(tmp_path: Any, waits: list[float]) -> Flask:
    """The App, configured for the local PIMs; its retries wait on `waits`, not the clock."""
    app = create_app(app_config(tmp_path))
    app.extensions["akeneo_client"].sleep = waits.append
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser on the App."""
    return app.test_client()


@pytest.fixture
def user(client: FlaskClient, pim: FakePim) -> PimUser:
    """The person who connects the App to `pim` in `client`."""
    return PimUser(client, pim)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (skipped outside CI when it is not installed)."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="akeneo-app-pg-"))
    root.chmod(0o755)
    server = PostgresServer(bindir, root)  # type: ignore[arg-type]
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the session (skipped outside CI when it is not installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary)  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres").new_database()  # type: ignore[no-any-return]


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """The App's database on `database_url` (SQLite, then PostgreSQL), every table created."""
    database = Database(database_url)
    database.create_schema()
    yield database
    database.close()


SLOW_MARKS = ("worker", "browser", "server", "postgres")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (workers, browsers, servers) first: on several processes, the quick ones
    then fill the gaps, and no slow one is left running alone at the end."""
    items.sort(key=lambda item: not any(item.get_closest_marker(m) for m in SLOW_MARKS))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close every database pool the tests' Apps left open, before the interpreter goes: a
    PostgreSQL connection collected at exit prints a ResourceWarning traceback in the summary."""
    for engine in [o for o in gc.get_objects() if isinstance(o, Engine)]:
        engine.dispose()
