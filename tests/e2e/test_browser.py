"""The App's flow as a person lives it: a real browser, the App and local PIMs on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from launcher import LocalSetup, free_port, start_local
from tests.browsers import connect
from tests.pims import SECRET_KEY, asked_scopes

pytestmark = pytest.mark.browser


def test_connect_and_allow_lands_on_the_connected_page(page: Any, local: LocalSetup) -> None:
    pim_url = local.pim_urls[0]
    page.goto(pim_url)
    assert page.text_content("#app-status") == "Not connected."
    page.click("#connect")
    assert page.url.startswith(f"{pim_url}/connect/apps/v1/authorize?")
    scopes = page.locator("#requested-scopes li").all_text_contents()
    assert scopes == sorted(asked_scopes(local.app))
    page.click("#allow")
    page.wait_for_url(f"{local.app_url}/")

    assert page.text_content("#user-name") == "Julia Stark"
    assert page.text_content("#pim-url") == pim_url
    assert page.locator("#channels li").all_text_contents() == ["ecommerce", "mobile", "print"]
    # no code or state left in the address bar or history entry
    assert "code=" not in page.url


def test_cancel_shows_the_cancelled_page(page: Any, local: LocalSetup) -> None:
    page.goto(local.pim_urls[0])
    page.click("#connect")
    with page.expect_navigation() as navigation:
        page.click("#cancel")
    assert navigation.value.status == 403
    assert page.text_content("h1") == "The connection was cancelled in the PIM"
    assert "access_denied" in page.text_content("#message")


def test_open_app_reconnects_without_a_consent_screen(page: Any, local: LocalSetup) -> None:
    pim_url = local.pim_urls[0]
    connect(page, pim_url, local.app_url)
    page.goto(pim_url)
    page.click("#open-app")  # connected: the PIM sends a fresh code straight back
    page.wait_for_url(f"{local.app_url}/")
    assert page.text_content("#user-name") == "Julia Stark"


def test_revoke_then_open_offers_to_reconnect(page: Any, local: LocalSetup) -> None:
    pim_url = local.pim_urls[0]
    connect(page, pim_url, local.app_url)
    page.goto(pim_url)
    page.click("#revoke")
    page.wait_for_selector("#connect")

    response = page.goto(local.app_url)
    assert response.status == 401
    assert "no longer accepts this App" in page.text_content("h1")
    page.click("text=Connect again")
    page.wait_for_selector("#requested-scopes")  # not connected any more: consent again
    page.click("#allow")
    page.wait_for_url(f"{local.app_url}/")
    assert page.locator("#channels li").count() == 3


def test_two_pims_in_two_browsers_stay_apart(browser: Any, local: LocalSetup) -> None:
    first, second = browser.new_context(), browser.new_context()
    try:
        page_a, page_b = first.new_page(), second.new_page()
        connect(page_a, local.pim_urls[0], local.app_url)
        connect(page_b, local.pim_urls[1], local.app_url)
        page_a.reload()
        assert page_a.text_content("#pim-url") == local.pim_urls[0]
        assert page_b.text_content("#pim-url") == local.pim_urls[1]
        stored = local.app.extensions["akeneo_store"].connections()
        assert sorted(c.pim_url for c in stored) == sorted(local.pim_urls)
    finally:
        first.close()
        second.close()


def test_pages_work_under_the_content_security_policy(page: Any, local: LocalSetup) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    connect(page, local.pim_urls[0], local.app_url)
    page.goto(local.app_url + "/activate")  # an error page too
    assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == []
    # the stylesheet loaded under default-src 'self'
    assert page.evaluate("getComputedStyle(document.querySelector('.card')).borderRadius") == "12px"


def test_new_scopes_after_a_restart_go_through_the_notice_and_the_pims_consent(
    page: Any, tmp_path: Path
) -> None:
    state_file = tmp_path / "devpim.json"
    config = {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "AKENEO_SCOPES": "read_channel_settings openid profile",
    }
    # fixed ports, as `make run` has (free_port: none an outgoing connection can take meanwhile)
    ports: dict[str, Any] = {"app_port": free_port(), "pim_ports": [free_port()]}
    first = start_local(**ports, app_config=config, state_file=state_file)
    pim_url, app_url = first.pim_urls[0], first.app_url
    connect(page, pim_url, app_url)
    first.stop()

    # the developer adds a scope and restarts `make run`: same PIM, same App registration
    wider = {**config, "AKENEO_SCOPES": "read_channel_settings read_products openid profile"}
    second = start_local(**ports, app_config=wider, state_file=state_file)
    try:
        page.goto(f"{app_url}/")
        assert "read_products" in page.text_content("#missing-scopes")
        page.click("#missing-scopes button")
        assert "The PIM was told" in page.text_content("#flash")

        page.goto(pim_url)
        assert "read_products" in page.text_content("#scope-requests")
        page.click("#open-app")  # the user opens the App again: consent for the new scope
        page.wait_for_selector("#requested-scopes")
        assert "read_products" in page.locator("#requested-scopes li").all_text_contents()
        page.click("#allow")
        page.wait_for_url(f"{app_url}/")
        assert "read_products" in page.text_content("#scopes")
        assert page.locator("#missing-scopes").count() == 0
    finally:
        second.stop()
