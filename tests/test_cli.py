"""`flask --app app akeneo …`: connections, call, notify-scopes, forget, rotate-key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import responses
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.akeneo import SCOPES_UPDATE_PATH
from tests.pims import FakePim, PimUser, app_config, asked_scopes, form_token, make_pim, plug


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["akeneo", *args])
    return result.exit_code, result.output


def test_connections_lists_pims_without_tokens(app: Flask, user: PimUser, pim: FakePim) -> None:
    assert run(app, "connections") == (0, "No PIM is connected yet.\n")
    user.connect()
    code, output = run(app, "connections")
    assert code == 0
    assert "http://pim-a.test  ok" in output and "Julia Stark" in output
    assert "read_channel_settings" in output
    assert str(pim.state.app.token) not in output


def test_call_prints_the_pims_json(app: Flask, user: PimUser, pim: FakePim) -> None:
    user.connect()
    code, output = run(app, "call", "/api/rest/v1/channels", "--pim", "http://pim-a.test/")
    assert code == 0
    assert [c["code"] for c in json.loads(output)["_embedded"]["items"]] == [
        "ecommerce",
        "mobile",
        "print",
    ]
    assert pim.calls("/api/rest/v1/channels")[0].headers["Authorization"].startswith("Bearer ")


def test_call_uses_akeneo_pim_url_by_default(tmp_path: Path, pim: FakePim) -> None:
    app = create_app(app_config(tmp_path, AKENEO_PIM_URL="http://pim-a.test"))
    PimUser(app.test_client(), pim).connect()
    code, output = run(app, "call", "/api/rest/v1/system-information")
    assert code == 0 and json.loads(output)["edition"] == "Serenity"


def test_call_fails_in_one_line_for_an_unknown_or_revoked_pim(
    app: Flask, user: PimUser, pim: FakePim
) -> None:
    code, output = run(app, "call", "/api/rest/v1/channels", "--pim", "http://pim-a.test")
    assert code == 1 and output == (
        "Error: The App is not connected to http://pim-a.test: connect it from the PIM.\n"
    )
    user.connect()
    token = str(pim.state.app.token)
    pim.state.revoke()
    code, output = run(app, "call", "/api/rest/v1/channels", "--pim", "http://pim-a.test")
    assert code == 1
    assert output.startswith("Error: The access token provided is invalid.")
    assert "Traceback" not in output and token not in output
    assert app.extensions["akeneo_store"].connection("http://pim-a.test").revoked


def test_call_refuses_a_non_api_path_or_no_pim(app: Flask) -> None:
    assert run(app, "call", "https://evil.example/x")[0] == 1
    code, output = run(app, "call", "/api/rest/v1/channels")
    assert code == 1 and "AKENEO_PIM_URL" in output


def test_notify_scopes_posts_the_configured_scopes(
    tmp_path: Path, app: Flask, user: PimUser, pim: FakePim
) -> None:
    user.connect()
    code, output = run(app, "notify-scopes", "http://pim-a.test")
    assert (code, pim.calls(SCOPES_UPDATE_PATH)) == (0, [])  # every scope granted: nothing asked
    assert "nothing to ask" in output
    narrow = create_app(app_config(tmp_path, AKENEO_SCOPES="read_channel_settings openid"))
    PimUser(narrow.test_client(), pim).connect()  # the PIM now grants fewer scopes
    code, output = run(app, "notify-scopes", "http://pim-a.test")
    assert code == 0, output
    (sent,) = pim.calls(SCOPES_UPDATE_PATH)
    assert sent.method == "POST"
    assert sent.query["scopes"] == [" ".join(asked_scopes(app))]
    assert pim.state.app.scope_requests == [sent.query["scopes"][0]]


def test_the_connected_page_offers_the_scope_notice_when_scopes_are_missing(
    tmp_path: Path, pim: FakePim
) -> None:
    first_release = create_app(app_config(tmp_path, AKENEO_SCOPES="read_channel_settings"))
    browser: FlaskClient = first_release.test_client()
    PimUser(browser, pim).connect()
    assert 'id="missing-scopes"' not in browser.get("/").get_data(as_text=True)

    # a new release of the App needs one more scope; same database, same browser session
    next_release = create_app(
        app_config(tmp_path, AKENEO_SCOPES="read_channel_settings read_categories")
    ).test_client()
    next_release.set_cookie("akeneo_app_session", browser.get_cookie("akeneo_app_session").value)  # type: ignore[union-attr]
    html = next_release.get("/").get_data(as_text=True)
    assert 'id="missing-scopes"' in html and "read_categories" in html
    token = form_token(html)
    assert next_release.post("/scopes/notify", data={"csrf_token": token}).status_code == 302
    assert pim.state.app.scope_requests == ["read_channel_settings read_categories"]
    assert "The PIM was told" in next_release.get("/").get_data(as_text=True)


def test_forget_deletes_the_stored_connection(app: Flask, user: PimUser) -> None:
    user.connect()
    assert run(app, "forget", " HTTP://PIM-A.test:80/some/page ")[0] == 0  # as /activate reads it
    assert app.extensions["akeneo_store"].connections() == []
    assert run(app, "forget", "http://pim-a.test")[0] == 1


def test_rotate_key_re_encrypts_with_the_first_key(tmp_path: Path, pim: FakePim) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = create_app(app_config(tmp_path, TOKEN_ENCRYPTION_KEY=old))
    PimUser(before.test_client(), pim).connect()
    during = create_app(app_config(tmp_path, TOKEN_ENCRYPTION_KEY=f"{new},{old}"))
    assert run(during, "rotate-key") == (
        0,
        "Re-encrypted 1 token(s) with the first key of TOKEN_ENCRYPTION_KEY. The older keys "
        "(and SECRET_KEY's) no longer decrypt anything you need.\n",
    )
    after = create_app(app_config(tmp_path, TOKEN_ENCRYPTION_KEY=new))
    connection = after.extensions["akeneo_store"].connection("http://pim-a.test")
    assert connection.access_token == pim.state.app.token


def test_a_scope_notice_refused_with_401_marks_the_connection_revoked(
    tmp_path: Path, pim: FakePim
) -> None:
    first_release = create_app(app_config(tmp_path, AKENEO_SCOPES="read_channel_settings"))
    browser = first_release.test_client()
    PimUser(browser, pim).connect()
    next_release = create_app(
        app_config(tmp_path, AKENEO_SCOPES="read_channel_settings read_categories")
    ).test_client()
    next_release.set_cookie("akeneo_app_session", browser.get_cookie("akeneo_app_session").value)  # type: ignore[union-attr]
    html = next_release.get("/").get_data(as_text=True)
    token = form_token(html)
    pim.state.revoke()  # the PIM disconnects the App before the user asks
    assert next_release.post("/scopes/notify", data={"csrf_token": token}).status_code == 302
    store = next_release.application.extensions["akeneo_store"]
    assert store.connection(pim.url).revoked
    assert "no longer accepts this App" in next_release.get("/").get_data(as_text=True)


def test_no_control_character_from_a_pim_reaches_the_terminal(
    wire: responses.RequestsMock, app: Flask
) -> None:
    hostile = plug(wire, make_pim("http://pim-x.test", USER_FIRSTNAME="\x1b]0;owned\x07\x1b[2J"))
    PimUser(app.test_client(), hostile).connect()
    hostile.answer("GET", "/api/rest/v1/channels", status=400, body={"message": "\x9b31mred\r"})
    for args in (("connections",), ("call", "/api/rest/v1/channels", "--pim", hostile.url)):
        _, output = run(app, *args)
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", output), repr(output)
    assert "\\x1b]0;owned" in run(app, "connections")[1]  # shown, harmless


def test_a_netrc_never_replaces_the_bearer_token(
    app: Flask, user: PimUser, pim: FakePim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".netrc").write_text("machine pim-a.test login someone password hunter2\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    user.connect()
    assert run(app, "call", "/api/rest/v1/channels", "--pim", pim.url)[0] == 0
    sent = [r.headers.get("Authorization", "") for r in pim.requests if r.path.startswith("/api")]
    assert sent and all(header.startswith("Bearer ") for header in sent)


def test_moving_to_an_explicit_token_key_keeps_every_connection(
    tmp_path: Path, pim: FakePim
) -> None:
    first = create_app(app_config(tmp_path))  # tokens encrypted with a key from SECRET_KEY
    browser = first.test_client()
    PimUser(browser, pim).connect()
    assert run(first, "rotate-key")[1].startswith("Error: TOKEN_ENCRYPTION_KEY is not set")
    new = Fernet.generate_key().decode()
    moved = create_app(app_config(tmp_path, TOKEN_ENCRYPTION_KEY=new))
    moved_browser = moved.test_client()
    moved_browser.set_cookie("akeneo_app_session", browser.get_cookie("akeneo_app_session").value)  # type: ignore[union-attr]
    assert "Julia Stark" in moved_browser.get("/").get_data(as_text=True)  # still readable
    assert run(moved, "rotate-key")[0] == 0
    other_secret = create_app(
        app_config(tmp_path, TOKEN_ENCRYPTION_KEY=new, SECRET_KEY="another-secret-" + "x" * 32)
    )
    connection = other_secret.extensions["akeneo_store"].connection("http://pim-a.test")
    assert connection.access_token == pim.state.app.token  # the new key alone reads it now


def test_a_token_no_key_reads_is_a_page_that_offers_to_connect_again(
    tmp_path: Path, pim: FakePim
) -> None:
    first = create_app(app_config(tmp_path, TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode()))
    browser = first.test_client()
    PimUser(browser, pim).connect()
    lost = create_app(app_config(tmp_path, TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode()))
    lost_browser = lost.test_client()
    lost_browser.set_cookie("akeneo_app_session", browser.get_cookie("akeneo_app_session").value)  # type: ignore[union-attr]
    page = lost_browser.get("/")
    assert page.status_code == 409
    html = page.get_data(as_text=True)
    assert "cannot read its stored token" in html and "Connect again" in html


def test_a_stored_connection_is_reached_whatever_the_host_policy(
    tmp_path: Path, pim: FakePim
) -> None:
    # as `make run` connected it (local hosts allowed), then the CLI in a new shell (defaults)
    PimUser(create_app(app_config(tmp_path)).test_client(), pim).connect()
    strict = create_app(
        app_config(
            tmp_path,
            AKENEO_PIM_ALLOWED_HOSTS="",
            AKENEO_PIM_ALLOW_HTTP="0",
            AKENEO_PUBLIC_URL=None,
        )
    )
    code, output = run(strict, "call", "/api/rest/v1/channels", "--pim", pim.url)
    assert code == 0 and "ecommerce" in output
    code, output = run(strict, "call", "/api/rest/v1/channels", "--pim", "http://other.test")
    assert code == 1 and "Only https PIM URLs are accepted" in output  # not stored: checked


def test_an_endpoint_the_local_pim_does_not_serve_is_named_not_a_reconnect(
    app: Flask, user: PimUser, pim: FakePim
) -> None:
    user.connect()
    code, output = run(app, "call", "/api/rest/v1/locales", "--pim", pim.url)
    assert code == 1
    assert "(HTTP 404): The local PIM does not serve GET /api/rest/v1/locales" in output
    assert "no such resource or endpoint" in output


def test_the_help_lists_every_command_in_full_sentences(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["akeneo", "--help"])
    code, output = result.exit_code, result.output
    assert code == 0
    assert re.search(r"\n  call +Call an API path and print what the PIM answers\.\n", output)
    for command in ("connections", "call", "notify-scopes", "forget", "rotate-key"):
        assert f"  {command} " in output
