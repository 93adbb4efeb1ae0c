"""The token store, on SQLite and on a real PostgreSQL server: same behaviour on both."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text, update

from app import create_app
from app.identity import User
from app.store import StateRow, Store

from .conftest import FakePim, PimUser, app_config, run_together

PIM = "https://my-pim.cloud.akeneo.com"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def stores(database_url: str) -> Iterator[Callable[..., Store]]:
    """Open stores on the test database (schema created); all closed after the test."""
    opened: list[Store] = []

    def open_store(*keys: str) -> Store:
        store = Store(database_url, list(keys or [KEY]))
        store.create_schema()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(stores: Callable[..., Store]) -> Store:
    return stores()


@pytest.fixture
def apps(database_url: str, tmp_path: Path) -> Iterator[Callable[[], FlaskClient]]:
    """Start App instances on the test database; their stores closed after the test."""
    started: list[FlaskClient] = []

    def start() -> FlaskClient:
        started.append(create_app(app_config(tmp_path, DATABASE_URL=database_url)).test_client())
        return started[-1]

    yield start
    for client in started:
        client.application.extensions["akeneo_store"].close()


def test_a_connection_round_trips_with_its_user(store: Store) -> None:
    store.save_connection(PIM, "t0k3n", ["openid", "read_products"], User("sub-1", "Ann", "a@x"))
    connection = store.connection(PIM)
    assert connection is not None
    assert connection.access_token == "t0k3n"
    assert connection.scopes == ("openid", "read_products")
    assert connection.user == User("sub-1", "Ann", "a@x")
    assert connection.connected_at.tzinfo is not None
    assert store.user(PIM, "sub-1") == User("sub-1", "Ann", "a@x")
    assert "t0k3n" not in repr(connection)


def test_reconnecting_replaces_the_token_and_clears_revocation(store: Store) -> None:
    store.save_connection(PIM, "old", ["read_products"], None)
    store.mark_revoked(PIM)
    assert store.connection(PIM).revoked  # type: ignore[union-attr]
    store.save_connection(PIM, "new", ["read_products"], None)
    connection = store.connection(PIM)
    assert connection is not None and connection.access_token == "new" and not connection.revoked
    assert len(store.connections()) == 1


def test_tokens_are_encrypted_at_rest(store: Store) -> None:
    store.save_connection(PIM, "t0k3n-in-clear?", [], None)
    with store.engine.connect() as db:
        (stored,) = db.execute(text("SELECT access_token FROM connections")).one()
    assert "t0k3n" not in stored
    assert Fernet(KEY).decrypt(stored.encode()) == b"t0k3n-in-clear?"


def test_forget_deletes_the_connection(store: Store) -> None:
    store.save_connection(PIM, "t", [], None)
    assert store.forget(PIM) is True
    assert store.connection(PIM) is None
    assert store.forget(PIM) is False


def test_a_state_is_consumed_once_and_only_for_its_pim(store: Store) -> None:
    store.add_state("s1", PIM)
    assert store.consume_state("s1", "https://other.example.com") is False
    assert store.consume_state("s1", PIM) is True
    assert store.consume_state("s1", PIM) is False
    assert store.consume_state("never-issued", PIM) is False


def test_a_state_expires_after_ten_minutes(store: Store) -> None:
    store.add_state("s1", PIM)
    with store.engine.begin() as db:
        db.execute(update(StateRow).values(created_at=datetime.now(UTC) - timedelta(minutes=11)))
    assert store.consume_state("s1", PIM) is False


def test_states_are_stored_as_hashes(store: Store) -> None:
    store.add_state("the-state-value", PIM)
    with store.engine.connect() as db:
        (stored,) = db.execute(text("SELECT state_hash FROM oauth_states")).one()
    assert stored != "the-state-value" and len(stored) == 64


def test_concurrent_consumers_of_one_state_get_one_success(store: Store) -> None:
    store.add_state("raced", PIM)
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def consume() -> None:
        barrier.wait()
        results.append(store.consume_state("raced", PIM))

    run_together(*[consume] * 8)
    assert sorted(results) == [False] * 7 + [True]


def test_rotating_keys_keeps_connections(stores: Callable[..., Store]) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stores(old).save_connection(PIM, "t0k3n", [], None)
    rotated = stores(new, old)
    assert rotated.connection(PIM).access_token == "t0k3n"  # type: ignore[union-attr]
    assert rotated.rotate_keys() == 1
    assert stores(new).connection(PIM).access_token == "t0k3n"  # type: ignore[union-attr]


def test_a_lost_key_says_how_to_recover(stores: Callable[..., Store]) -> None:
    stores(KEY).save_connection(PIM, "t", [], None)
    with pytest.raises(RuntimeError, match="TOKEN_ENCRYPTION_KEY"):
        stores(Fernet.generate_key().decode()).connection(PIM)


def _create_schema(database_url: str, outcomes: Any) -> None:
    try:
        store = Store(database_url, [KEY])
        store.create_schema()
        store.close()
        outcomes.put("ok")
    except Exception as error:  # reported to the test, which shows it
        outcomes.put(f"{type(error).__name__}: {error}")


def test_schema_creation_is_safe_from_several_processes_at_once(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    outcomes = context.Queue()
    workers = [
        context.Process(target=_create_schema, args=(database_url, outcomes)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    reports = [outcomes.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert reports == ["ok"] * 4
    engine = create_engine(database_url)
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM connections")).scalar() == 0
    engine.dispose()


# -- the App on each database, and two App instances sharing one -------------------------------


def test_the_full_flow_works_on_each_database(
    apps: Callable[[], FlaskClient], pim: FakePim
) -> None:
    client = apps()
    assert PimUser(client, pim).connect().status_code == 302
    assert "Julia Stark" in client.get("/").get_data(as_text=True)


def test_activate_on_one_instance_and_callback_on_another(
    apps: Callable[[], FlaskClient], pim: FakePim
) -> None:
    first, second = apps(), apps()
    user = PimUser(first, pim)
    callback = user.consent(user.activate())
    second.set_cookie("akeneo_app_session", first.get_cookie("akeneo_app_session").value)  # type: ignore[union-attr]
    assert PimUser(second, pim).come_back(callback).status_code == 302
    # the cookie goes back to the first instance, which sees the connection
    first.set_cookie("akeneo_app_session", second.get_cookie("akeneo_app_session").value)  # type: ignore[union-attr]
    assert "Julia Stark" in first.get("/").get_data(as_text=True)
    # and a replay on the first instance is refused: the state was consumed in the shared store
    assert PimUser(first, pim).come_back(callback).status_code == 400


def test_healthz_fails_when_the_database_is_gone(client: FlaskClient, tmp_path: Path) -> None:
    store: Store = client.application.extensions["akeneo_store"]
    store.engine.dispose()
    (tmp_path / "app.db").unlink()
    (tmp_path / "app.db").mkdir()  # now it cannot be opened
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable"}


def test_expired_states_are_pruned_as_new_ones_arrive(store: Store) -> None:
    store.add_state("old", PIM)
    with store.engine.begin() as db:
        db.execute(update(StateRow).values(created_at=datetime.now(UTC) - timedelta(minutes=11)))
    for n in range(2000):  # pruning runs on about one activation in 256
        store.add_state(f"new-{n}", PIM)
    with store.engine.connect() as db:
        hashes = set(db.execute(text("SELECT state_hash FROM oauth_states")).scalars())
    assert hashlib.sha256(b"old").hexdigest() not in hashes
    assert len(hashes) == 2000
