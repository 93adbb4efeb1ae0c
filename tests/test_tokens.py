"""Token sources behind one API client: a connection's password grant with refresh, a pre-issued
token and the App token, against a local PIM that answers /api/oauth/v1/token like a real one."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import responses
from flask import Flask

from app import create_app
from app import current as core
from app.akeneo import AkeneoClient
from app.api import PimApi
from app.config import ConnectionCredentials
from app.errors import PimError, TokenRevoked
from app.store import Store
from app.tokens import PasswordGrantToken, StaticToken
from tests.databases import open_store
from tests.pims import FakePim, PimUser, app_config, make_pim, plug, run_together

GRANT = "/api/oauth/v1/token"
CREDENTIALS = ConnectionCredentials("conn-client", "conn-secret", "julia", "j-password")
PIM_CONFIG = {
    "CONNECTION_CLIENT_ID": CREDENTIALS.client_id,
    "CONNECTION_SECRET": CREDENTIALS.secret,
    "CONNECTION_USERNAME": CREDENTIALS.username,
    "CONNECTION_PASSWORD": CREDENTIALS.password,
}


class Clock:
    """One time for the PIM and the App, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def conn_pim(wire: responses.RequestsMock, clock: Clock) -> FakePim:
    pim = plug(wire, make_pim("http://pim-c.test", **PIM_CONFIG))
    pim.state.clock = clock
    return pim


@pytest.fixture
def store(tmp_path: Path) -> Store:
    key = base64.urlsafe_b64encode(b"k" * 32).decode()
    return open_store(f"sqlite:///{tmp_path / 'tokens.db'}", key)


@pytest.fixture
def make_api(store: Store, clock: Clock, conn_pim: FakePim) -> Callable[..., PimApi]:
    client = AkeneoClient(None, None, timeout=5)

    def make(credentials: ConnectionCredentials = CREDENTIALS) -> PimApi:
        tokens = PasswordGrantToken(client, store, conn_pim.url, credentials, clock=clock)
        return PimApi(conn_pim.url, tokens, client)

    return make


def grants(pim: FakePim) -> list[str]:
    return [json.loads(r.body)["grant_type"] for r in pim.calls(GRANT)]


def test_the_password_grant_is_sent_like_the_pim_expects(
    make_api: Callable[..., PimApi], conn_pim: FakePim
) -> None:
    assert make_api().get("/api/rest/v1/system-information")["edition"] == "Serenity"
    (sent,) = conn_pim.calls(GRANT)
    expected = base64.b64encode(b"conn-client:conn-secret").decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {
        "grant_type": "password",
        "username": "julia",
        "password": "j-password",
    }


def test_a_token_is_reused_until_shortly_before_it_expires(
    make_api: Callable[..., PimApi], conn_pim: FakePim, clock: Clock
) -> None:
    api = make_api()
    for _ in range(3):
        api.get("/api/rest/v1/channels")
    assert grants(conn_pim) == ["password"]
    clock.now += 3600 - 30  # within the refresh margin of the 3600 s expiry
    api.get("/api/rest/v1/channels")
    assert grants(conn_pim) == ["password", "refresh_token"]
    clock.now += 3000
    api.get("/api/rest/v1/channels")
    assert grants(conn_pim) == ["password", "refresh_token"]  # the new token is still good


def test_concurrent_callers_refresh_once(
    make_api: Callable[..., PimApi], conn_pim: FakePim, clock: Clock
) -> None:
    api = make_api()
    api.get("/api/rest/v1/channels")
    clock.now += 3600
    barrier = threading.Barrier(8)
    failures: list[Exception] = []

    def call() -> None:
        barrier.wait()
        try:
            api.get("/api/rest/v1/channels")
        except Exception as error:  # collected, asserted below
            failures.append(error)

    run_together(*[call] * 8)
    assert failures == []
    assert grants(conn_pim) == ["password", "refresh_token"]


def test_a_refused_refresh_token_falls_back_to_the_password(
    make_api: Callable[..., PimApi], conn_pim: FakePim, clock: Clock, store: Store
) -> None:
    make_api().get("/api/rest/v1/channels")
    conn_pim.state._refresh_tokens.clear()  # the PIM forgot it (expired after 14 days)
    clock.now += 3600
    assert make_api().get("/api/rest/v1/channels")["_embedded"]["items"]
    assert grants(conn_pim) == ["password", "refresh_token", "password"]


def test_a_401_mid_session_refreshes_once_and_retries(
    make_api: Callable[..., PimApi], conn_pim: FakePim
) -> None:
    api = make_api()
    api.get("/api/rest/v1/channels")
    conn_pim.state.expire_connection_tokens()  # e.g. the PIM's clock runs ahead of ours
    assert api.get("/api/rest/v1/channels")["_embedded"]["items"]
    assert grants(conn_pim) == ["password", "refresh_token"]
    statuses = [r.path for r in conn_pim.requests]
    assert statuses.count("/api/rest/v1/channels") == 3  # ok, 401, ok after the refresh


def test_a_401_that_persists_is_not_retried_for_ever(
    make_api: Callable[..., PimApi], conn_pim: FakePim
) -> None:
    conn_pim.answer(
        "GET",
        "/api/rest/v1/channels",
        status=401,
        body={"code": 401, "message": "The access token provided is invalid."},
    )
    with pytest.raises(TokenRevoked):
        make_api().get("/api/rest/v1/channels")
    assert len(conn_pim.calls("/api/rest/v1/channels")) == 2


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (
            ConnectionCredentials("conn-client", "conn-secret", "julia", "wrong"),
            "No user found for the given username and password",
        ),
        (
            ConnectionCredentials("conn-client", "wrong", "julia", "j-password"),
            "does not match any client, or secret is invalid",
        ),
    ],
)
def test_refused_credentials_give_a_clear_error_and_store_nothing(
    make_api: Callable[..., PimApi],
    store: Store,
    credentials: ConnectionCredentials,
    message: str,
) -> None:
    with pytest.raises(PimError) as refused:
        make_api(credentials).get("/api/rest/v1/channels")
    assert "HTTP 422" in refused.value.message and message in refused.value.message
    assert "wrong" not in refused.value.message
    with store.engine.connect() as db:
        assert db.exec_driver_sql("SELECT count(*) FROM connection_tokens").scalar() == 0


def test_connection_tokens_are_encrypted_at_rest(
    make_api: Callable[..., PimApi], store: Store
) -> None:
    make_api().get("/api/rest/v1/channels")
    with store.engine.connect() as db:
        access, refresh = db.exec_driver_sql(
            "SELECT access_token, refresh_token FROM connection_tokens"
        ).one()
    stored = store.grants.get("http://pim-c.test|conn-client|julia")
    assert stored is not None
    assert stored.access_token not in access and stored.refresh_token not in (refresh or "")
    assert access.startswith("gAAAA") and refresh.startswith("gAAAA")


def test_a_static_token_is_sent_as_is(conn_pim: FakePim) -> None:
    api = PimApi(conn_pim.url, StaticToken("pre-issued"), AkeneoClient(None, None))
    with pytest.raises(TokenRevoked):
        api.get("/api/rest/v1/channels")
    assert (
        conn_pim.calls("/api/rest/v1/channels")[0].headers["Authorization"] == "Bearer pre-issued"
    )
    assert "pre-issued" not in repr(StaticToken("pre-issued"))


def test_an_app_token_is_read_once_per_use_and_a_reconnection_beats_a_refusal(
    app: Flask, pim: FakePim
) -> None:
    PimUser(app.test_client(), pim).connect()
    with app.app_context():
        store = core.store()
        connected = store.connection(pim.url)
        assert connected
        # a step of a job read the token, then the App was connected again (a new token)
        store.save_connection(pim.url, "the-token-before", connected.scopes, None)
        api = core.app_api(pim.url)
        assert api.tokens.token() == "the-token-before"
        store.save_connection(pim.url, connected.access_token, connected.scopes, None)
        assert api.tokens.token() == "the-token-before"  # read once for this use, not per call

        # the PIM refuses the old token: the new one is tried, nothing is marked revoked
        assert api.get("/api/rest/v1/channels?limit=1")
        assert not store.connection(pim.url).revoked  # type: ignore[union-attr]
        assert [c.headers["Authorization"] for c in pim.calls("/api/rest/v1/channels")] == [
            "Bearer the-token-before",
            f"Bearer {connected.access_token}",
        ]

        # a refusal of the token the App still holds is a disconnection
        store.save_connection(pim.url, "a-token-the-pim-revoked", connected.scopes, None)
        with pytest.raises(TokenRevoked):
            core.app_api(pim.url).get("/api/rest/v1/channels?limit=1")
        assert store.connection(pim.url).revoked  # type: ignore[union-attr]


# -- the CLI with each source ---------------------------------------------------------------------


def cli(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["akeneo", *args])
    return result.exit_code, result.output


def connection_app(tmp_path: Path, **extra: str) -> Flask:
    return create_app(
        app_config(
            tmp_path,
            AKENEO_PIM_URL="http://pim-c.test",
            AKENEO_CONNECTION_CLIENT_ID=CREDENTIALS.client_id,
            AKENEO_CONNECTION_SECRET=CREDENTIALS.secret,
            AKENEO_CONNECTION_USERNAME=CREDENTIALS.username,
            **extra,
        )
    )


def test_call_uses_the_connection_credentials(tmp_path: Path, conn_pim: FakePim) -> None:
    app = connection_app(tmp_path, AKENEO_CONNECTION_PASSWORD=CREDENTIALS.password)
    code, output = cli(app, "call", "/api/rest/v1/channels")
    assert code == 0, output
    assert json.loads(output)["_embedded"]["items"][0]["code"] == "ecommerce"
    assert grants(conn_pim) == ["password"]


def test_call_with_a_wrong_password_exits_with_one_line(tmp_path: Path, conn_pim: FakePim) -> None:
    app = connection_app(tmp_path, AKENEO_CONNECTION_PASSWORD="not-the-password")
    code, output = cli(app, "call", "/api/rest/v1/channels")
    assert code == 1
    assert output.count("\n") == 1 and "No user found" in output
    assert "not-the-password" not in output and "Traceback" not in output


def test_call_prefers_a_pre_issued_token(tmp_path: Path, conn_pim: FakePim) -> None:
    app = connection_app(
        tmp_path, AKENEO_CONNECTION_PASSWORD=CREDENTIALS.password, AKENEO_ACCESS_TOKEN="pre-issued"
    )
    code, output = cli(app, "call", "/api/rest/v1/channels")
    assert code == 1 and "The access token provided is invalid." in output
    assert conn_pim.calls(GRANT) == []


def test_three_of_four_connection_settings_fail_fast(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="AKENEO_CONNECTION_PASSWORD missing"):
        connection_app(tmp_path)
