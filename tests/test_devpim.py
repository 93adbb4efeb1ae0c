"""The local PIM answers like a real Akeneo PIM (shared/akeneo-connect.md), or the tests lie."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography import x509
from flask.testing import FlaskClient

from launcher import start_local
from tests.pims import CLIENT_ID, CLIENT_SECRET, FakePim, make_pim

TOKEN = "/connect/apps/v1/oauth2/token"


@pytest.fixture
def local_pim() -> FakePim:
    return make_pim("http://pim-a.test")


@pytest.fixture
def pim_http(local_pim: FakePim) -> FlaskClient:
    return local_pim.app.test_client()


def token_form(issued: str, **changes: str | None) -> dict[str, str]:
    identifier = "a" * 60
    form: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "code": issued,
        "grant_type": "authorization_code",
        "code_identifier": identifier,
        "code_challenge": hashlib.sha256((identifier + CLIENT_SECRET).encode()).hexdigest(),
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def exchange(http: FlaskClient, form: dict[str, str]) -> Any:
    return http.post(TOKEN, data=form)


def test_a_valid_code_gives_a_bearer_token_with_sorted_scopes_and_an_id_token(
    local_pim: FakePim, pim_http: FlaskClient
) -> None:
    code = local_pim.state.issue_code(frozenset({"read_products", "openid", "email"}))
    answer = exchange(pim_http, token_form(code))
    assert answer.status_code == 200
    body = answer.json
    assert set(body) == {"access_token", "token_type", "scope", "id_token"}
    assert body["token_type"] == "bearer"
    assert body["scope"] == "email openid read_products"
    header = jwt.get_unverified_header(body["id_token"])
    assert header == {"alg": "RS256", "typ": "JWT"}
    payload = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert payload["iss"] == "http://pim-a.test" and payload["aud"] == CLIENT_ID
    assert payload["email"] == "julia@example.com" and "firstname" not in payload
    assert isinstance(payload["iat"], float)


def test_no_id_token_without_openid(local_pim: FakePim, pim_http: FlaskClient) -> None:
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    assert "id_token" not in exchange(pim_http, token_form(code)).json


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": "0" * 64}, {"error": "invalid_client"}),
        ({"client_id": None}, {"error": "invalid_request"}),
        ({"client_id": "unknown", "code_challenge": None}, {"error": "invalid_client"}),
        ({"code": None}, {"error": "invalid_request"}),
        ({"code": "unknown"}, {"error": "invalid_grant", "error_description": "Code is not valid"}),
        ({"grant_type": "password"}, {"error": "unsupported_grant_type"}),
        ({"grant_type": None}, {"error": "unsupported_grant_type"}),
        ({"code_identifier": None}, {"error": "invalid_request"}),
        # the order of the checks: a wrong challenge wins over a wrong grant type
        ({"code_challenge": "0" * 64, "grant_type": "x"}, {"error": "invalid_client"}),
    ],
)
def test_token_errors_are_400_json_in_the_real_order(
    local_pim: FakePim, pim_http: FlaskClient, changes: dict[str, str | None], error: dict[str, str]
) -> None:
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    answer = exchange(pim_http, token_form(code, **changes))
    assert answer.status_code == 400
    assert answer.json == error


def test_a_code_works_once(local_pim: FakePim, pim_http: FlaskClient) -> None:
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    assert exchange(pim_http, token_form(code)).status_code == 200
    assert exchange(pim_http, token_form(code)).json["error_description"] == "Code is not valid"


def test_a_code_expires_after_30_seconds(local_pim: FakePim, pim_http: FlaskClient) -> None:
    now = [1000.0]
    local_pim.state.clock = lambda: now[0]
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    now[0] += 31
    assert exchange(pim_http, token_form(code)).json == {
        "error": "invalid_grant",
        "error_description": "Code has expired",
    }


def test_a_json_body_is_accepted_and_the_query_ignored(
    local_pim: FakePim, pim_http: FlaskClient
) -> None:
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    assert pim_http.post(TOKEN, json=token_form(code)).status_code == 200
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    assert pim_http.post(TOKEN, query_string=token_form(code)).status_code == 400


def test_same_scopes_same_token_other_scopes_new_token(
    local_pim: FakePim, pim_http: FlaskClient
) -> None:
    def token_for(scopes: set[str]) -> str:
        code = local_pim.state.issue_code(frozenset(scopes))
        return str(exchange(pim_http, token_form(code)).json["access_token"])

    first = token_for({"read_products"})
    assert token_for({"read_products"}) == first
    second = token_for({"read_products", "read_categories"})
    assert second != first
    api = pim_http.get(
        "/api/rest/v1/system-information", headers={"Authorization": f"Bearer {first}"}
    )
    assert api.status_code == 401 and api.json["message"] == "The access token provided is invalid."


def test_unknown_scopes_are_dropped_silently(local_pim: FakePim) -> None:
    assert local_pim.state.grantable("read_products fly_to_mars openid") == {
        "read_products",
        "openid",
    }


def test_authorize_shows_consent_then_skips_it_once_connected(
    local_pim: FakePim, pim_http: FlaskClient
) -> None:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "scope": "read_products",
        "state": "s1",
    }
    screen = pim_http.get("/connect/apps/v1/authorize", query_string=query)
    assert screen.status_code == 200 and "read_products" in screen.get_data(as_text=True)
    allowed = pim_http.post(
        "/connect/apps/v1/authorize",
        data={"decision": "allow", "scope": "read_products", "state": "s1"},
    )
    assert allowed.headers["Location"].startswith("http://localhost/callback?code=")
    assert allowed.headers["Location"].endswith("&state=s1")
    exchange(pim_http, token_form(allowed.headers["Location"].split("code=")[1].split("&")[0]))
    again = pim_http.get("/connect/apps/v1/authorize", query_string=query)
    assert again.status_code == 302 and "code=" in again.headers["Location"]


def test_cancel_returns_access_denied_with_the_state(pim_http: FlaskClient) -> None:
    cancelled = pim_http.post(
        "/connect/apps/v1/authorize", data={"decision": "cancel", "state": "s1"}
    )
    assert cancelled.headers["Location"] == "http://localhost/callback?error=access_denied&state=s1"


@pytest.mark.parametrize(
    "query",
    [
        {"response_type": "token", "client_id": CLIENT_ID},
        {"response_type": "code", "client_id": "unknown"},
        {"response_type": "code", "client_id": CLIENT_ID, "scope": "x" * 1001},
    ],
)
def test_a_bad_authorize_request_stays_in_the_pim(
    pim_http: FlaskClient, query: dict[str, str]
) -> None:
    assert pim_http.get("/connect/apps/v1/authorize", query_string=query).status_code == 400


def test_the_public_key_is_an_x509_certificate(pim_http: FlaskClient) -> None:
    pem = pim_http.get("/connect/apps/v1/openid/public-key").json["public_key"]
    assert x509.load_pem_x509_certificate(pem.encode()).public_key().key_size == 2048


def test_api_refusals_say_what_the_real_api_says(local_pim: FakePim, pim_http: FlaskClient) -> None:
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    token = exchange(pim_http, token_form(code)).json["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert pim_http.get("/api/rest/v1/channels").json == {
        "code": 401,
        "message": "Authentication is required",
    }
    assert pim_http.get("/api/rest/v1/channels", headers=bearer).status_code == 403
    assert (
        pim_http.get("/api/rest/v1/system-information", headers=bearer).json["edition"]
        == "Serenity"
    )
    local_pim.state.revoke()
    revoked = pim_http.get("/api/rest/v1/system-information", headers=bearer)
    assert revoked.status_code == 401
    assert revoked.json["message"].endswith("Your app has been disconnected from that PIM.")


def test_channels_are_paginated(local_pim: FakePim, pim_http: FlaskClient) -> None:
    code = local_pim.state.issue_code(frozenset({"read_channel_settings"}))
    bearer = {
        "Authorization": "Bearer " + exchange(pim_http, token_form(code)).json["access_token"]
    }
    first = pim_http.get("/api/rest/v1/channels?limit=2", headers=bearer).json
    assert [c["code"] for c in first["_embedded"]["items"]] == ["ecommerce", "mobile"]
    assert (
        first["_links"]["next"]["href"] == "http://pim-a.test/api/rest/v1/channels?page=2&limit=2"
    )


def test_scope_update_answers_ok_and_notifies(local_pim: FakePim, pim_http: FlaskClient) -> None:
    code = local_pim.state.issue_code(frozenset({"read_products"}))
    bearer = {
        "Authorization": "Bearer " + exchange(pim_http, token_form(code)).json["access_token"]
    }
    answer = pim_http.post(
        "/connect/apps/v1/scopes/update?scopes=read_products%20write_products", headers=bearer
    )
    assert answer.status_code == 200 and answer.json == "Ok"
    assert "write_products" in pim_http.get("/").get_data(as_text=True)


@pytest.mark.server
def test_a_restart_of_make_run_is_not_a_revocation(tmp_path: Path) -> None:
    state_file = tmp_path / "instance" / "devpim.json"
    config = {
        "TESTING": True,
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
    }
    first = start_local(app_config=config, state_file=state_file)
    browser = requests.Session()
    pim_port, app_port = first.pim_urls[0].rsplit(":", 1)[1], first.app_url.rsplit(":", 1)[1]
    authorize = browser.get(f"{first.app_url}/activate", params={"pim_url": first.pim_urls[0]})
    form = dict(re.findall(r'name="(scope|state)" value="([^"]*)"', authorize.text))
    connected = browser.post(authorize.url.split("?")[0], data={**form, "decision": "allow"})
    assert "ecommerce" in connected.text
    client_id = first.app.extensions["akeneo_settings"].client_id
    first.stop()
    assert state_file.stat().st_mode & 0o777 == 0o600  # it holds the App's client secret

    again = start_local(
        app_port=int(app_port), pim_ports=[int(pim_port)], app_config=config, state_file=state_file
    )
    try:
        assert again.app.extensions["akeneo_settings"].client_id == client_id
        page = browser.get(f"{again.app_url}/")
        assert page.status_code == 200 and "ecommerce" in page.text  # the token still works
        assert "revoked" not in page.text
    finally:
        again.stop()


@pytest.mark.server
def test_make_reset_pim_while_it_runs_is_not_undone_at_the_stop(tmp_path: Path) -> None:
    state_file = tmp_path / "instance" / "devpim.json"
    config = {"TESTING": True, "SECRET_KEY": "k" * 40, "DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    first = start_local(app_config=config, state_file=state_file)
    client_id = first.app.extensions["akeneo_settings"].client_id
    assert state_file.exists()  # written at the start: its absence later means a reset
    state_file.unlink()  # `make reset-pim` in another shell
    first.stop()  # Ctrl+C
    assert not state_file.exists()
    again = start_local(app_config=config, state_file=state_file)
    try:
        assert again.app.extensions["akeneo_settings"].client_id != client_id  # anew
    finally:
        again.stop()


@pytest.mark.server
def test_each_request_line_says_which_server_wrote_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="werkzeug")
    config = {
        "TESTING": True,
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
    }
    setup = start_local(app_config=config)
    try:
        requests.get(f"{setup.app_url}/healthz", timeout=5)
        requests.get(f"{setup.pim_urls[0]}/", timeout=5)
    finally:
        setup.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any('[app] "GET /healthz" 200' in line for line in lines), lines
    assert any('[local PIM] "GET /" 200' in line for line in lines), lines


def test_the_product_index_follows_every_write() -> None:
    from devpim.products import Catalog

    catalog = Catalog("http://pim.test", 5)
    before = catalog.keys("uuid")
    assert [key for key, _ in before] == sorted(key for key, _ in before)
    assert catalog.keys("uuid") is before  # kept between pages while nothing is written
    # a search_after cursor starts just past its key, whether that key exists or not
    assert catalog.after(before, before[1][0]) == 2
    assert catalog.after(before, "") == 0
    assert catalog.after(before, "f" * 36) == 5

    new = "00000000-0000-4000-8000-000000000000"
    catalog.upsert(new, {"values": {}})
    assert catalog.keys("uuid")[0] == (new, new)
    catalog.delete(before[0][1])
    assert before[0][1] not in {u for _, u in catalog.keys("uuid")}
    catalog.restore({})
    assert catalog.keys("uuid") == before

    # what a search filters on, without the values, is the product's own
    product = catalog.get(before[2][1])
    facts = catalog.facts(before[2][1])
    assert product and facts and "values" not in facts
    assert facts == {key: product[key] for key in facts}
