"""What every page carries: security headers, no caching, health, sign-out with CSRF."""

from __future__ import annotations

from flask.testing import FlaskClient

from .conftest import PimUser


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


def test_sign_out_needs_the_sessions_csrf_token(user: PimUser, client: FlaskClient) -> None:
    user.connect()
    assert client.post("/logout").status_code == 400
    assert "Julia Stark" in client.get("/").get_data(as_text=True)  # still signed in
    html = client.get("/").get_data(as_text=True)
    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert "Your Akeneo App is running" in client.get("/").get_data(as_text=True)
    store = client.application.extensions["akeneo_store"]
    assert store.connection("http://pim-a.test") is not None  # the connection stays
