"""The activation flow through the App, against local PIMs faked at the HTTP boundary."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from flask.testing import FlaskClient
from sqlalchemy import event

from app import create_app
from app.akeneo import TOKEN_PATH, USER_AGENT
from app.store import Store
from tests.pims import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakePim,
    PimUser,
    app_config,
    asked_scopes,
    make_pim,
    plug,
    run_together,
)


def store_of(client: FlaskClient) -> Store:
    return client.application.extensions["akeneo_store"]  # type: ignore[no-any-return]


def page(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


# -- the happy path --------------------------------------------------------------------------


def test_activate_redirects_to_the_pims_authorize_page(user: PimUser, client: FlaskClient) -> None:
    location = urlsplit(user.activate())
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "http://pim-a.test/connect/apps/v1/authorize"
    )
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == [" ".join(asked_scopes(client.application))]
    assert len(query["state"][0]) >= 22  # at least 128 bits, url-safe
    assert "redirect_uri" not in query  # Akeneo uses the registered callback URL


def test_each_activation_gets_a_fresh_state(user: PimUser) -> None:
    states = {parse_qs(urlsplit(user.activate()).query)["state"][0] for _ in range(5)}
    assert len(states) == 5


def test_a_full_connection_shows_the_user_scopes_and_channels(
    user: PimUser, client: FlaskClient
) -> None:
    callback = user.connect()
    assert callback.status_code == 302
    assert callback.headers["Location"] == "/"

    home = client.get("/")
    html = page(home)
    assert home.status_code == 200
    assert 'id="user-name">Julia Stark<' in html
    assert "julia@example.com" in html
    assert "http://pim-a.test" in html
    for scope in asked_scopes(client.application):
        assert f'<code class="nowrap">{scope}</code>' in html
    assert re.findall(r"<li><code>(\w+)</code></li>", html) == ["ecommerce", "mobile", "print"]


def test_the_code_is_exchanged_exactly_as_akeneo_documents(user: PimUser, pim: FakePim) -> None:
    user.connect()
    (sent,) = pim.calls(TOKEN_PATH)
    form = {key: values[0] for key, values in sent.form.items()}
    assert sent.method == "POST"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert set(form) == {"client_id", "code", "grant_type", "code_identifier", "code_challenge"}
    assert form["client_id"] == CLIENT_ID
    assert form["grant_type"] == "authorization_code"
    assert re.fullmatch(r"[0-9a-f]{64}", form["code_identifier"])
    expected = hashlib.sha256((form["code_identifier"] + CLIENT_SECRET).encode()).hexdigest()
    assert form["code_challenge"] == expected
    assert CLIENT_SECRET not in sent.body.decode()  # the secret itself never leaves the App


def test_every_call_to_the_pim_names_the_app(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    client.get("/")
    paths = {r.path for r in pim.requests}
    assert {TOKEN_PATH, "/connect/apps/v1/openid/public-key", "/api/rest/v1/channels"} <= paths
    assert all(r.headers["User-Agent"] == USER_AGENT for r in pim.requests)


def test_api_calls_carry_the_stored_token(user: PimUser, client: FlaskClient, pim: FakePim) -> None:
    user.connect()
    client.get("/")
    (call,) = pim.calls("/api/rest/v1/channels")
    assert call.headers["Authorization"] == f"Bearer {pim.state.app.token}"


def test_the_connection_is_stored_with_the_user_by_sub(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    connection = store_of(client).connection("http://pim-a.test")
    assert connection is not None
    assert connection.access_token == pim.state.app.token
    assert connection.scopes == tuple(sorted(asked_scopes(client.application)))
    assert connection.revoked is False
    assert connection.user is not None and connection.user.name == "Julia Stark"
    assert connection.user.sub != "1"  # the PIM's pairwise id, not its internal user id


def test_the_token_is_not_in_the_database_file_in_clear(
    user: PimUser, client: FlaskClient, pim: FakePim, tmp_path: Path
) -> None:
    user.connect()
    token = pim.state.app.token
    assert token
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("app.db*"))
    assert token.encode() not in raw
    with sqlite3.connect(tmp_path / "app.db") as db:
        (stored,) = db.execute("SELECT access_token FROM connections").fetchone()
    assert stored.startswith("gAAAA")  # a Fernet token


def test_open_app_on_a_connected_pim_reconnects_without_a_screen(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    first = pim.state.app.token
    again = user.consent(user.activate())
    assert urlsplit(again).path == "/callback"  # the PIM skipped its consent screen
    assert user.come_back(again).status_code == 302
    assert store_of(client).connection(pim.url).access_token == first  # same scopes, same token


def test_reconnecting_after_a_revocation_replaces_the_token(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    old = pim.state.app.token
    pim.state.revoke()
    user.connect()
    connection = store_of(client).connection(pim.url)
    assert connection.access_token == pim.state.app.token != old
    assert connection.revoked is False
    assert len(store_of(client).connections()) == 1


def test_the_session_cookie_is_httponly_and_lax(user: PimUser, client: FlaskClient) -> None:
    response = client.get("/activate", query_string={"pim_url": "http://pim-a.test"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on a laptop


def test_the_session_cookie_is_secure_over_https(client: FlaskClient) -> None:
    response = client.get(
        "/activate", query_string={"pim_url": "http://pim-a.test"}, base_url="https://localhost"
    )
    assert "Secure" in response.headers["Set-Cookie"]


# -- several PIMs, several browsers, one store -----------------------------------------------


def test_two_pims_connect_in_interleaved_flows_and_each_sees_its_own(
    client: FlaskClient, pim: FakePim, pim_b: FakePim
) -> None:
    browser_a, browser_b = client, client.application.test_client()
    julia, peter = PimUser(browser_a, pim), PimUser(browser_b, pim_b)
    a_at_pim = julia.consent(julia.activate())
    b_at_pim = peter.consent(peter.activate())
    assert peter.come_back(b_at_pim).status_code == 302
    assert julia.come_back(a_at_pim).status_code == 302

    assert "Julia Stark" in page(browser_a.get("/")) and "pim-a.test" in page(browser_a.get("/"))
    assert "Peter Parker" in page(browser_b.get("/")) and "pim-b.test" in page(browser_b.get("/"))
    stored = {c.pim_url: c.access_token for c in store_of(client).connections()}
    assert stored == {pim.url: pim.state.app.token, pim_b.url: pim_b.state.app.token}
    assert pim.state.app.token != pim_b.state.app.token


def test_concurrent_flows_for_many_pims_share_one_store(
    client: FlaskClient, wire: object, tmp_path: Path
) -> None:
    from tests.pims import make_pim, plug

    pims = [plug(wire, make_pim(f"http://pim-{n}.test", USER_ID=str(n))) for n in range(6)]  # type: ignore[arg-type]
    results: list[int] = []

    def connect(pim: FakePim) -> None:
        browser = client.application.test_client()
        results.append(PimUser(browser, pim).connect().status_code)

    run_together(*(partial(connect, pim) for pim in pims))
    assert results == [302] * 6
    stored = {c.pim_url: c.access_token for c in store_of(client).connections()}
    assert stored == {p.url: p.state.app.token for p in pims}


# -- the PIM revokes the App -----------------------------------------------------------------


def test_a_revoked_token_shows_a_reconnect_page_not_a_crash(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    pim.state.revoke()
    home = client.get("/")
    assert home.status_code == 401
    assert "no longer accepts this App" in page(home)
    assert "/activate?pim_url=http://pim-a.test" in page(home)
    assert store_of(client).connection(pim.url).revoked is True


def test_a_revocation_whose_connection_is_forgotten_meanwhile_still_shows_the_reconnect_page(
    user: PimUser, client: FlaskClient, pim: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    user.connect()
    pim.state.revoke()
    store = store_of(client)
    mark_revoked = store.mark_revoked

    def marked_then_forgotten(pim_url: str) -> bool:
        marked = mark_revoked(pim_url)
        store.forget(pim_url)  # a worker took the PIM's app.deleted notice at that moment
        return marked

    monkeypatch.setattr(store, "mark_revoked", marked_then_forgotten)
    home = client.get("/")
    assert home.status_code == 401
    assert "no longer accepts this App" in page(home)
    assert store.connection(pim.url) is None


def test_a_revoked_connection_is_not_called_again(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    pim.state.revoke()
    client.get("/")
    client.get("/")
    assert len(pim.calls("/api/rest/v1/channels")) == 1  # no loop into the PIM


# -- cancelled in the PIM ----------------------------------------------------------------------


def test_cancel_in_the_pim_shows_a_clear_page_with_a_retry(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    response = user.come_back(user.consent(user.activate(), decision="cancel"))
    assert response.status_code == 403
    assert "The connection was cancelled in the PIM" in page(response)
    assert "Cancelled" in page(response) and "Error 403" not in page(response)  # a choice
    assert "access_denied" in page(response)
    assert "Connect again" in page(response)
    assert pim.calls(TOKEN_PATH) == []
    assert store_of(client).connections() == []


def test_an_error_description_is_shown_escaped(user: PimUser, client: FlaskClient) -> None:
    state = _state(user.activate())
    response = client.get(
        "/callback",
        query_string={
            "error": "access_denied",
            "error_description": "<script>x</script>",
            "state": state,
        },
    )
    assert "<script>x" not in page(response)
    assert "&lt;script&gt;x&lt;/script&gt;" in page(response)


@pytest.mark.parametrize("state", [None, "another-browsers-state"])
def test_an_error_callback_without_this_browsers_state_is_generic_and_spends_nothing(
    user: PimUser, client: FlaskClient, pim: FakePim, state: str | None
) -> None:
    authorize = user.activate()
    forged = {"error": "access_denied", "error_description": "Call +1 555 0100 for support"}
    response = client.get("/callback", query_string=forged | ({"state": state} if state else {}))
    assert response.status_code == 403
    assert "Call +1" not in page(response)  # the attacker's words are not shown
    assert "sent you back without a connection" in page(response)
    # the connection this browser started still works
    assert user.come_back(user.consent(authorize)).status_code == 302
    assert store_of(client).connection(pim.url) is not None


def test_a_wrong_state_leaves_the_connection_in_progress_alone(
    user: PimUser, client: FlaskClient
) -> None:
    callback = user.consent(user.activate())
    assert client.get("/callback", query_string={"code": "x", "state": "forged"}).status_code == 400
    assert user.come_back(callback).status_code == 302


def test_a_state_older_than_ten_minutes_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    callback = user.consent(user.activate())
    with client.session_transaction() as session:
        session["oauth_started"] -= 601
    response = user.come_back(callback)
    assert response.status_code == 400
    assert "more than 10 minutes old" in page(response)
    assert pim.calls(TOKEN_PATH) == []


def test_activate_writes_nothing_to_the_database(client: FlaskClient, pim: FakePim) -> None:
    store = store_of(client)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(3):
        response = client.get("/activate", query_string={"pim_url": pim.url})
        assert response.status_code == 302
    assert statements == []


# -- refused callbacks: no call to the PIM, nothing stored -------------------------------------


def _state(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["state"][0]


def test_a_callback_without_state_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.activate()
    response = client.get("/callback", query_string={"code": "abc"})
    assert response.status_code == 400
    assert pim.calls(TOKEN_PATH) == []


def test_a_callback_with_a_wrong_state_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    state = _state(user.activate())
    response = client.get("/callback", query_string={"code": "abc", "state": state[:-1] + "x"})
    assert response.status_code == 400
    assert "state does not match" in page(response)
    assert pim.calls(TOKEN_PATH) == []


def test_a_callback_in_a_browser_that_did_not_start_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    callback = user.consent(user.activate())
    stranger = PimUser(client.application.test_client(), pim)
    response = stranger.come_back(callback)
    assert response.status_code == 400
    assert "no connection in progress" in page(response)
    assert pim.calls(TOKEN_PATH) == []


def test_a_foreign_state_is_refused(client: FlaskClient, pim: FakePim) -> None:
    # the attacker's own state, pushed into the victim's browser (login CSRF)
    attacker = PimUser(client.application.test_client(), pim)
    attackers_callback = attacker.consent(attacker.activate())
    victim = PimUser(client, pim)
    victim.activate()
    response = victim.come_back(attackers_callback)
    assert response.status_code == 400
    assert pim.calls(TOKEN_PATH) == []


def test_a_callback_is_used_once(user: PimUser, client: FlaskClient, pim: FakePim) -> None:
    callback = user.consent(user.activate())
    assert user.come_back(callback).status_code == 302
    again = user.come_back(callback)
    assert again.status_code == 400
    assert len(pim.calls(TOKEN_PATH)) == 1


def test_a_replayed_session_cookie_cannot_reuse_a_state(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    callback = user.consent(user.activate())
    saved = client.get_cookie("akeneo_app_session")
    assert saved is not None
    assert user.come_back(callback).status_code == 302
    client.set_cookie("akeneo_app_session", saved.value)  # the cookie from before the callback
    replay = user.come_back(callback)
    assert replay.status_code == 400
    assert "already used" in page(replay)
    assert len(pim.calls(TOKEN_PATH)) == 1


@pytest.mark.parametrize("code", [None, "", "x" * 1025])
def test_a_missing_or_oversized_code_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim, code: str | None
) -> None:
    state = _state(user.activate())
    query = {"state": state} | ({"code": code} if code is not None else {})
    response = client.get("/callback", query_string=query)
    assert response.status_code == 400
    assert pim.calls(TOKEN_PATH) == []


# -- the PIM answers badly: 502/504, the PIM's words shown, nothing stored ---------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "shown"),
    [
        (
            400,
            b'{"error": "invalid_grant", "error_description": "Code is not valid"}',
            "application/json",
            "invalid_grant — Code is not valid",
        ),
        (400, b'{"error": "invalid_client"}', "application/json", "invalid_client"),
        (500, b"{}", "application/json", "HTTP 500"),
        (503, b"<html>Maintenance</html>", "text/html", "HTTP 503"),
        (200, b"<html>Maintenance</html>", "text/html", "not JSON"),
        (200, b"{not json", "application/json", "not JSON"),
        (200, b'{"token_type": "bearer", "scope": ""}', "application/json", "no access_token"),
        (302, b"", "text/html", "redirect"),
    ],
)
def test_a_bad_token_answer_gives_502_and_stores_nothing(
    user: PimUser,
    client: FlaskClient,
    pim: FakePim,
    status: int,
    body: bytes,
    content_type: str,
    shown: str,
) -> None:
    pim.answer("POST", TOKEN_PATH, status=status, raw=body, content_type=content_type)
    response = user.connect()
    assert response.status_code == 502
    assert shown in page(response)
    assert "Connect again" in page(response)
    assert store_of(client).connections() == []


def test_a_pim_that_does_not_answer_in_time_gives_504(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    pim.answer("POST", TOKEN_PATH, raises=requests.ReadTimeout())
    response = user.connect()
    assert response.status_code == 504
    assert "did not answer" in page(response)
    assert store_of(client).connections() == []


def test_an_unreachable_pim_gives_502(user: PimUser, pim: FakePim) -> None:
    pim.answer("POST", TOKEN_PATH, raises=requests.ConnectionError())
    assert user.connect().status_code == 502


def test_errors_are_json_for_json_clients(client: FlaskClient) -> None:
    response = client.get("/activate", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.json["status"] == 400
    assert "pim_url" in response.json["message"]


# -- secrets stay secret ------------------------------------------------------------------------


def test_no_secret_reaches_the_logs(
    user: PimUser, client: FlaskClient, pim: FakePim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    callback = user.consent(user.activate())
    code = parse_qs(urlsplit(callback).query)["code"][0]
    user.come_back(callback)
    client.get("/")
    pim.state.revoke()
    client.get("/")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "activation finished" in logged  # the flow was logged…
    for secret in (CLIENT_SECRET, code, store_of(client).connection(pim.url).access_token):
        assert secret not in logged  # …without any secret


def test_no_code_reaches_an_error_page(user: PimUser, pim: FakePim) -> None:
    pim.answer("POST", TOKEN_PATH, status=400, raw=b'{"error": "invalid_grant"}')
    callback = user.consent(user.activate())
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert code not in page(user.come_back(callback))


# -- hardening: duplicated parameters, session rotation, a callback raced against itself ----------


@pytest.mark.parametrize("name", ["state", "code", "error"])
def test_a_parameter_given_twice_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim, name: str
) -> None:
    callback = urlsplit(user.consent(user.activate()))
    response = client.get(f"{callback.path}?{callback.query}&{name}=again&{name}=and-again")
    assert response.status_code == 400
    assert "more than once" in page(response)
    assert pim.calls(TOKEN_PATH) == []


def test_the_session_is_renewed_after_connecting(user: PimUser, client: FlaskClient) -> None:
    with client.session_transaction() as session:
        session["planted"] = "by an attacker before login"
    user.activate()
    with client.session_transaction() as session:
        csrf_before = session.get("csrf")
    user.come_back(user.consent(user.activate()))
    with client.session_transaction() as session:
        assert "planted" not in session
        assert "oauth_state" not in session and "oauth_pim_url" not in session
        assert session["pim_url"] == "http://pim-a.test"
        assert session["csrf"] != csrf_before


def test_a_callback_raced_against_itself_exchanges_the_code_once(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    callback = urlsplit(user.consent(user.activate()))
    cookie = client.get_cookie("akeneo_app_session")
    assert cookie is not None
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def arrive() -> None:
        browser = client.application.test_client()  # the same cookie, sent six times at once
        browser.set_cookie("akeneo_app_session", cookie.value)
        barrier.wait()
        statuses.append(browser.get(callback.path, query_string=callback.query).status_code)

    run_together(*[arrive] * 6)
    assert sorted(statuses) == [302] + [400] * 5
    assert len(pim.calls(TOKEN_PATH)) == 1


def test_a_revoked_app_never_redirects_itself_into_the_pim(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    pim.state.revoke()
    for _ in range(3):
        response = client.get("/")
        assert response.status_code == 401 and "Location" not in response.headers
    assert pim.calls("/connect/apps/v1/authorize") == []


# -- a hostile PIM: endless or malformed lists, oversized answers ------------------------------

CHANNELS = "/api/rest/v1/channels"


def test_an_endless_channel_list_is_cut_and_said_so(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    served: list[int] = []

    def endless() -> tuple[int, dict[str, str], bytes]:
        served.append(len(served) + 1)
        body = {
            "_links": {"next": {"href": f"{pim.url}{CHANNELS}?page={len(served) + 1}"}},
            "_embedded": {"items": [{"code": f"c{len(served)}_{i}"} for i in range(10)]},
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    pim.overrides[("GET", CHANNELS)] = endless
    user.connect()
    home = client.get("/")
    assert home.status_code == 200
    assert len(served) == 5  # the page reads 5 pages at most
    assert len(re.findall(r"<li><code>c\d_\d</code></li>", page(home))) == 50
    assert "more channels than this page reads at once" in page(home)


def test_a_list_whose_pages_link_back_is_refused(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    pim.answer(
        "GET",
        CHANNELS,
        body={
            "_links": {"next": {"href": f"{pim.url}{CHANNELS}?limit=100"}},
            "_embedded": {"items": []},
        },
    )
    user.connect()
    home = client.get("/")
    assert home.status_code == 502
    assert "never ends" in page(home)
    assert len(pim.calls(CHANNELS)) == 1  # the link named the page just read: not fetched


@pytest.mark.parametrize(
    "body",
    [[1, 2, 3], {"_embedded": {"items": [1, 2]}}, {"_embedded": {"items": "x"}}, {"_embedded": 7}],
)
def test_a_malformed_list_is_a_502_page_not_a_crash(
    user: PimUser, client: FlaskClient, pim: FakePim, body: object
) -> None:
    pim.answer("GET", CHANNELS, body=body)
    user.connect()
    home = client.get("/")
    assert home.status_code == 502
    assert "not a list page" in page(home)


def test_a_relative_next_link_is_followed_on_the_same_pim(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    pages = iter(
        [
            {
                "_links": {"next": {"href": f"{CHANNELS}?page=2"}},
                "_embedded": {"items": [{"code": "a"}]},
            },
            {"_links": {}, "_embedded": {"items": [{"code": "b"}]}},
        ]
    )
    pim.overrides[("GET", CHANNELS)] = lambda: (200, {}, json.dumps(next(pages)).encode())
    user.connect()
    html = page(client.get("/"))
    assert re.findall(r"<li><code>(\w+)</code></li>", html) == ["a", "b"]
    assert pim.calls(CHANNELS)[1].query == {"page": ["2"]}


@pytest.mark.parametrize(
    "answer",
    [
        {"access_token": "t" * 800_000, "token_type": "bearer", "scope": "openid"},
        {"access_token": "token", "token_type": "bearer", "scope": "read_products " * 8000},
    ],
)
def test_an_oversized_token_answer_is_refused_and_nothing_stored(
    user: PimUser, client: FlaskClient, pim: FakePim, answer: dict[str, str]
) -> None:
    pim.answer("POST", TOKEN_PATH, body=answer)
    response = user.connect()
    assert response.status_code == 502
    assert "oversized or malformed" in page(response)
    assert store_of(client).connections() == []


def test_names_and_emails_from_the_pim_are_kept_to_a_sane_length(
    wire: responses.RequestsMock, client: FlaskClient
) -> None:
    huge = plug(
        wire,
        make_pim("http://pim-huge.test", USER_FIRSTNAME="N" * 7000, USER_EMAIL="e" * 400 + "@x.io"),
    )
    PimUser(client, huge).connect()
    connection = store_of(client).connection(huge.url)
    assert connection is not None and connection.user is not None
    assert connection.user.name == "N" * 100
    assert connection.user.email is None  # a cut address would be a wrong one


def test_an_error_page_names_the_pim(user: PimUser, pim: FakePim) -> None:
    pim.answer("POST", TOKEN_PATH, status=500, body={"message": "boom"})
    response = user.connect()
    assert response.status_code == 502
    assert f'<code id="error-pim">{pim.url}</code>' in page(response)


def test_a_channel_list_refused_for_a_scope_names_the_scope(tmp_path: Path, pim: FakePim) -> None:
    app = create_app(app_config(tmp_path, AKENEO_SCOPES="read_products openid"))
    browser = app.test_client()
    PimUser(browser, pim).connect()
    html = page(browser.get("/"))
    assert (
        "The PIM refused to list its channels: Access forbidden. You are not allowed to list "
        in html
    )
    assert "needs the read_channel_settings scope" in html and ".." not in html
