"""What every page carries: security headers, no caching, health, sign-out with CSRF."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from itsdangerous import BadSignature

from app import create_app
from app.flow import SESSION_LIFETIME
from app.logs import RequestId
from tests.pims import FakePim, PimUser, app_config, form_token


def test_pages_carry_security_headers(client: FlaskClient) -> None:
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers


def test_hsts_only_over_https(client: FlaskClient) -> None:
    headers = client.get("/", base_url="https://localhost").headers
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_the_callback_and_error_pages_are_not_cached(client: FlaskClient) -> None:
    assert client.get("/callback?code=x&state=y").headers["Cache-Control"] == "no-store"


def test_forwarded_headers_are_ignored_without_trusted_proxies(client: FlaskClient) -> None:
    html = client.get(
        "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    ).get_data(as_text=True)
    assert "http://localhost/activate" in html and "evil.example" not in html


def test_healthz_answers_when_the_store_does(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_an_unknown_page_is_a_404_page(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert "Error 404" in response.get_data(as_text=True)


def test_the_session_cookie_is_flasks_own_byte_for_byte(app: Flask) -> None:
    # the App prepares the signer once (for speed): a cookie must still be what Flask signs, so
    # sessions survive an upgrade either way, and a cookie signed with another key is refused
    app.config["SECRET_KEY_FALLBACKS"] = ["the-key-before-rotation-" + "o" * 16]
    ours = app.session_interface.get_signing_serializer(app)
    flasks = SecureCookieSessionInterface().get_signing_serializer(app)
    assert ours and flasks
    session = {"oauth_state": "s" * 43, "started": 1, "_flashes": [("message", "Hi")]}
    assert ours.dumps(session) == flasks.dumps(session)
    assert ours.loads(flasks.dumps(session)) == session

    before_rotation = Flask("before")
    before_rotation.secret_key = app.config["SECRET_KEY_FALLBACKS"][0]
    old_cookie = SecureCookieSessionInterface().get_signing_serializer(before_rotation)
    assert old_cookie and ours.loads(old_cookie.dumps(session)) == session
    before_rotation.secret_key = "an-attackers-key-" + "x" * 32
    forged = SecureCookieSessionInterface().get_signing_serializer(before_rotation)
    assert forged
    with pytest.raises(BadSignature):
        ours.loads(forged.dumps(session))


def test_sign_out_needs_the_sessions_csrf_token(user: PimUser, client: FlaskClient) -> None:
    user.connect()
    assert client.post("/logout").status_code == 400
    assert "Julia Stark" in client.get("/").get_data(as_text=True)  # still signed in
    html = client.get("/").get_data(as_text=True)
    token = form_token(html)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert "Your Akeneo App is running" in client.get("/").get_data(as_text=True)
    store = client.application.extensions["akeneo_store"]
    assert store.connection("http://pim-a.test") is not None  # the connection stays


def test_every_response_has_a_request_id(client: FlaskClient) -> None:
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first.headers["X-Request-Id"]) == 16
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


def test_an_incoming_request_id_is_ignored_unless_a_proxy_is_trusted(tmp_path: Path) -> None:
    untrusted = create_app(app_config(tmp_path)).test_client()
    assert untrusted.get("/", headers={"X-Request-Id": "abc"}).headers["X-Request-Id"] != "abc"
    trusted = create_app(app_config(tmp_path, TRUSTED_PROXIES="1")).test_client()
    assert trusted.get("/", headers={"X-Request-Id": "abc"}).headers["X-Request-Id"] == "abc"
    forged = trusted.get("/", headers={"X-Request-Id": "a b;c"}).headers["X-Request-Id"]
    assert forged != "a b;c"


def test_behind_a_trusted_proxy_the_urls_are_https_and_the_cookie_secure(tmp_path: Path) -> None:
    client = create_app(
        app_config(tmp_path, TRUSTED_PROXIES="1", AKENEO_PUBLIC_URL=None)
    ).test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "abc.ngrok-free.app"}
    html = client.get("/", headers=forwarded).get_data(as_text=True)
    assert "https://abc.ngrok-free.app/callback" in html
    response = client.get("/activate?pim_url=http://pim-a.test", headers=forwarded)
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_log_lines_carry_the_request_id(client: FlaskClient) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RequestId())  # as on the handler that configure_logging() installs
    logging.getLogger("app").addHandler(handler)
    try:
        response = client.get("/activate", query_string={"pim_url": "https://evil.example"})
    finally:
        logging.getLogger("app").removeHandler(handler)
    refused = [r for r in records if r.name == "app.errors"]
    assert refused and {r.request_id for r in refused} == {response.headers["X-Request-Id"]}


def test_server_timing_splits_pim_time_from_the_apps_when_asked(
    tmp_path: Path, pim: FakePim
) -> None:
    plain = create_app(app_config(tmp_path)).test_client()
    assert "Server-Timing" not in plain.get("/healthz").headers
    client = create_app(app_config(tmp_path, SERVER_TIMING="1")).test_client()
    user = PimUser(client, pim)
    callback = user.consent(user.activate())
    timing = user.come_back(callback).headers["Server-Timing"]
    pim_ms, app_ms = (float(part.split("dur=")[1]) for part in timing.split(","))
    assert pim_ms > 0 and app_ms > 0  # two PIM calls (token, key) were timed
    assert client.get("/healthz").headers["Server-Timing"].startswith("pim;dur=0.00,")


def test_sign_out_ends_the_session_for_good(user: PimUser, client: FlaskClient) -> None:
    user.connect()
    copied = client.get_cookie("akeneo_app_session")
    assert copied is not None
    html = client.get("/").get_data(as_text=True)
    token = form_token(html)
    signed_out = client.post("/logout", data={"csrf_token": token}, follow_redirects=True)
    assert "You are signed out" in signed_out.get_data(as_text=True)
    # the cookie copied before sign-out (another tab, a stolen copy) opens nothing any more
    thief = client.application.test_client()
    thief.set_cookie("akeneo_app_session", copied.value)
    assert "Your Akeneo App is running" in thief.get("/").get_data(as_text=True)


def test_sessions_expire_after_twelve_hours(
    user: PimUser, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user.connect()
    assert "Julia Stark" in client.get("/").get_data(as_text=True)
    now = time.time()
    # the signed cookie's age is read with time.time(): 11 hours on, still in; 13, out
    monkeypatch.setattr(time, "time", lambda: now + 11 * 3600)
    assert "Julia Stark" in client.get("/").get_data(as_text=True)
    monkeypatch.setattr(time, "time", lambda: now + 13 * 3600)
    assert "Your Akeneo App is running" in client.get("/").get_data(as_text=True)
    assert SESSION_LIFETIME == timedelta(hours=12)  # and the stored session ends with it


def test_a_request_body_over_the_cap_is_refused_unread(client: FlaskClient) -> None:
    response = client.post("/logout", data={"csrf_token": "x" * 300_000})
    assert response.status_code == 413


def test_the_session_cookie_lasts_the_sessions_twelve_hours(
    user: PimUser, client: FlaskClient
) -> None:
    callback = user.connect()
    cookie = callback.headers["Set-Cookie"]
    assert "Expires=" in cookie  # closing the browser does not sign out
    expires = parsedate_to_datetime(cookie.split("Expires=")[1].split(";")[0])
    left = expires - datetime.now(UTC)
    assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12)


def test_a_revoked_connection_says_so_in_the_tab_title_too(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    pim.app.test_client().post("/apps/revoke")
    html = client.get("/").get_data(as_text=True)
    assert "<title>Disconnected" in html and "no longer accepts this App" in html
