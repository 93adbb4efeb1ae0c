"""Live changes and the App inside the local PIM, as a person sees them on `make run`:

- a product renamed in the local PIM reaches the App's product page within seconds, with no
  Sync now (the Event Platform), and a deleted one leaves the copy;
- the product tab shows the product's mapped values inside the PIM's page;
- with the Event Platform permission taken away (the subscription is suspended, and the App's
  page says so), the grid's "Sync with …" makes the copy take a renamed product.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from launcher import start_local
from tests.browsers import connect, local_app_config

pytestmark = pytest.mark.browser


def wait_until(page: Any, url: str, check: Any, seconds: float = 15) -> float:
    """Reload `url` until `check(text)` holds; the seconds it took. The App's page reloads
    itself once a sync ends (sync.js): a visit that this reload interrupts is made again."""
    started = time.monotonic()
    text = ""
    while True:
        try:
            page.goto(url)
            text = page.text_content("body") or ""
        except PlaywrightError:  # net::ERR_ABORTED, or the page went away while read
            text = ""
        if check(text):
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, text
        page.wait_for_timeout(200)


def rename_in_the_pim(page: Any, pim_url: str, uuid: str | None, name: str) -> str:
    """Rename a product (the first one when `uuid` is None) on the local PIM's products page."""
    page.goto(f"{pim_url}/products")
    row = page.locator(f"#products tr[data-uuid='{uuid}']" if uuid else "#products tr[data-uuid]")
    row = row.first
    found = row.get_attribute("data-uuid")
    row.locator("input[name=name]").fill(name)
    row.locator("button", has_text="Rename").click()
    page.wait_for_selector("#saved")
    return str(found)


def test_live_changes_the_product_tab_and_the_grid_action_on_the_local_set_up(
    page: Any, tmp_path: Path
) -> None:
    setup = start_local(
        # no periodic sync: only events and actions bring news
        app_config=local_app_config(tmp_path, AKENEO_SYNC_INTERVAL="0"),
        worker_dir=tmp_path,
    )
    try:
        pim_url, app_url = setup.pim_urls[0], setup.app_url
        connect(page, pim_url, app_url)
        page.goto(page.get_attribute("#configure", "href"))
        page.check("#catalog-enabled")
        page.select_option("#source-title", "name")
        page.click("#save")
        page.wait_for_selector("#saved")
        # the first sync and the event subscription are two jobs: either may end first
        wait_until(
            page,
            f"{app_url}/",
            lambda text: "Last sync finished" in text and "Live" in text,
            60,
        )
        # the local platform delivers at once: the panel says so (Akeneo's takes minutes)
        assert page.text_content("#events-badge") == "Live"
        assert page.text_content("#events-text").startswith("Subscribed: changes")

        # live: a rename reaches the App's page in seconds, without Sync now
        uuid = rename_in_the_pim(page, pim_url, None, "Renamed live in the PIM")
        product = f"{app_url}/products/{uuid}"
        assert wait_until(page, product, lambda text: "Renamed live in the PIM" in text) < 10
        page.goto(f"{app_url}/")
        assert page.text_content("#events-text") == (
            "Changes in the PIM reach the copy within seconds."
        )
        page.goto(f"{pim_url}/products")  # and a product deleted in the PIM leaves the copy
        gone = page.locator("#products tr[data-uuid]").nth(1)
        gone_uuid = gone.get_attribute("data-uuid")
        gone.locator("button", has_text="Delete").click()
        page.wait_for_selector("#saved")
        wait_until(
            page,
            f"{app_url}/products/{gone_uuid}",
            lambda text: "not in the App's catalog" in text,
        )

        # the product tab, inside the PIM's product page: the App's copy of it
        page.goto(f"{pim_url}/products/{uuid}")
        frame = page.frame_locator("#frame-1")
        frame.locator("#values").wait_for()
        assert frame.locator("#tab-title").text_content() == "Renamed live in the PIM"
        assert "SKU" in (frame.locator("#values").text_content() or "")  # labels, not names
        assert "into the App's copy on" in (frame.locator("#read-at").text_content() or "")

        # no more events: the PIM's permission is taken away, the subscription suspended
        page.goto(pim_url)
        page.uncheck("#event-platform-allowed")
        page.click("#save-permission")
        page.goto(f"{app_url}/")
        assert "Suspended by the Event Platform" in page.text_content("#events-text")
        rename_in_the_pim(page, pim_url, uuid, "Synced from the grid")
        page.goto(product)
        assert "Synced from the grid" not in (page.text_content("body") or "")

        # "Sync with …" on the ticked product: the copy takes it
        page.goto(f"{pim_url}/products")
        page.check(f"#products tr[data-uuid='{uuid}'] input[type=checkbox]")
        page.click("#grid button[data-extension='flask_app_sync_selection']")
        assert "Queued 1 product" in (page.text_content("#action-answer") or "")
        wait_until(page, product, lambda text: "Synced from the grid" in text)

    finally:
        setup.stop()
