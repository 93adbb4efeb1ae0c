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
from app.errors import ConfigError, TokenUnreadable
from app.identity import User
from app.store import BrowserSessionRow, SpentStateRow, Store
from tests.databases import open_store
from tests.pims import FakePim, PimUser, app_config, run_together

PIM = "https://my-pim.cloud.akeneo.com"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def stores(database_url: str) -> Iterator[Callable[..., Store]]:
    """Open stores on the test database (schema created); all closed after the test."""
    opened: list[Store] = []

    def open_one(*keys: str) -> Store:
        store = open_store(database_url, *(keys or [KEY]))
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.database.close()


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
        client.application.extensions["akeneo_database"].close()


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


def test_a_state_is_spent_once(store: Store) -> None:
    assert store.spend_state("s1") is True
    assert store.spend_state("s1") is False
    assert store.spend_state("s2") is True


def test_spent_states_are_stored_as_hashes(store: Store) -> None:
    store.spend_state("the-state-value")
    with store.engine.connect() as db:
        (stored,) = db.execute(text("SELECT state_hash FROM spent_states")).one()
    assert stored == hashlib.sha256(b"the-state-value").hexdigest()


def test_concurrent_spenders_of_one_state_get_one_success(store: Store) -> None:
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def spend() -> None:
        barrier.wait()
        results.append(store.spend_state("raced"))

    run_together(*[spend] * 8)
    assert sorted(results) == [False] * 7 + [True]


def test_a_browser_session_ends_at_sign_out_and_at_expiry(store: Store) -> None:
    store.open_session("sid-1", PIM, "sub-1", timedelta(hours=12))
    store.open_session("sid-2", PIM, None, timedelta(hours=12))
    assert store.session_pim("sid-1") == PIM
    store.close_session("sid-1")
    assert store.session_pim("sid-1") is None
    assert store.session_pim("sid-2") == PIM
    with store.engine.begin() as db:
        db.execute(update(BrowserSessionRow).values(expires_at=datetime.now(UTC)))
    assert store.session_pim("sid-2") is None
    assert store.session_pim("never-issued") is None


def test_session_ids_are_stored_as_hashes(store: Store) -> None:
    store.open_session("the-session-id", PIM, None, timedelta(hours=1))
    with store.engine.connect() as db:
        (stored,) = db.execute(text("SELECT id_hash FROM browser_sessions")).one()
    assert stored == hashlib.sha256(b"the-session-id").hexdigest()


def test_rotating_keys_keeps_connections(stores: Callable[..., Store]) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stores(old).save_connection(PIM, "t0k3n", [], None)
    rotated = stores(new, old)
    assert rotated.connection(PIM).access_token == "t0k3n"  # type: ignore[union-attr]
    assert rotated.rotate_keys() == 1
    assert stores(new).connection(PIM).access_token == "t0k3n"  # type: ignore[union-attr]


def test_a_lost_key_says_how_to_recover(stores: Callable[..., Store]) -> None:
    stores(KEY).save_connection(PIM, "t", [], None)
    with pytest.raises(TokenUnreadable, match="Connect again from the PIM.*TOKEN_ENCRYPTION_KEY"):
        stores(Fernet.generate_key().decode()).connection(PIM)


def _create_schema(database_url: str, outcomes: Any) -> None:
    try:
        open_store(database_url, KEY).database.close()
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


def test_old_spent_states_and_sessions_are_pruned_as_new_ones_arrive(store: Store) -> None:
    store.spend_state("old")
    store.open_session("old", PIM, None, timedelta(hours=1))
    with store.engine.begin() as db:
        long_ago = datetime.now(UTC) - timedelta(minutes=11)
        db.execute(update(SpentStateRow).values(spent_at=long_ago))
        db.execute(update(BrowserSessionRow).values(expires_at=long_ago))
    for n in range(2000):  # pruning runs on about one write in 256
        store.spend_state(f"new-{n}")
        store.open_session(f"new-{n}", PIM, None, timedelta(hours=1))
    old = hashlib.sha256(b"old").hexdigest()
    with store.engine.connect() as db:
        states = set(db.execute(text("SELECT state_hash FROM spent_states")).scalars())
        sessions = set(db.execute(text("SELECT id_hash FROM browser_sessions")).scalars())
    assert old not in states and len(states) == 2000
    assert old not in sessions and len(sessions) == 2000


def test_the_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'private.db'}", KEY)
    store.spend_state("s")  # writes through the WAL
    files = sorted(tmp_path.glob("private.db*"))
    assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files), files
    store.database.close()


def test_an_unwritable_database_folder_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "instance"
    folder.mkdir()
    (folder / "akeneo-app.db").mkdir()  # a file that cannot be opened: as a bad mount would be
    with pytest.raises(ConfigError, match="cannot be opened for writing.*mount a volume"):
        open_store(f"sqlite:///{folder / 'akeneo-app.db'}", KEY)


def test_opening_the_app_again_keeps_the_connection_date_a_reconnection_renews_it(
    store: Store,
) -> None:
    first = store.save_connection(PIM, "t", ["read_products"], None).connected_at
    again = store.save_connection(PIM, "t2", ["read_products"], None)
    assert again.connected_at == first == store.connection(PIM).connected_at  # type: ignore[union-attr]
    store.mark_revoked(PIM)
    renewed = store.save_connection(PIM, "t3", ["read_products"], None)
    assert renewed.connected_at > first and not renewed.revoked
