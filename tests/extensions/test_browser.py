"""The App inside the local PIM, as a person sees it on `make run`: the product tab shows the
product's mapped values; the grid's "Sync with …" makes the copy take a renamed product."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from launcher import start_local
from tests.browsers import connect
from tests.events.test_browser import wait_until
from tests.pims import SECRET_KEY

pytestmark = pytest.mark.browser


def test_the_tab_shows_the_copy_and_the_grid_action_syncs_a_renamed_product(
    page: Any, tmp_path: Path
) -> None:
    setup = start_local(
        app_config={
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "AKENEO_SYNC_INTERVAL": "0",
        },
        worker_dir=tmp_path,
    )
    try:
        pim_url, app_url = setup.pim_urls[0], setup.app_url
        page.goto(pim_url)  # no Event Platform here: only the action can bring a change
        page.uncheck("#event-platform-allowed")
        page.click("#save-permission")
        connect(page, pim_url, app_url)
        page.goto(page.get_attribute("#configure", "href"))
        page.check("#catalog-enabled")
        page.select_option("#source-title", "name")
        page.click("#save")
        page.wait_for_selector("#saved")
        wait_until(page, f"{app_url}/", lambda text: "Last sync finished" in text, 60)

        # the product tab: the App's view of the product, inside the PIM's page
        page.goto(f"{pim_url}/products")
        row = page.locator("#products tr[data-uuid]").first
        uuid = row.get_attribute("data-uuid")
        title = row.locator("input[name=name]").input_value()
        page.goto(f"{pim_url}/products/{uuid}")
        frame = page.frame_locator("#frame-1")
        frame.locator("#values").wait_for()
        assert title in (frame.locator("#values").text_content() or "")
        assert "Read into the App's copy" in (frame.locator("#read-at").text_content() or "")

        # renamed in the PIM, then "Sync with …" on the grid: the copy takes it
        page.goto(f"{pim_url}/products")
        row = page.locator(f"#products tr[data-uuid='{uuid}']")
        row.locator("input[name=name]").fill("Synced from the grid")
        row.locator("button", has_text="Rename").click()
        page.wait_for_selector("#saved")
        product = f"{app_url}/products/{uuid}"
        page.goto(product)
        assert "Synced from the grid" not in (page.text_content("body") or "")
        page.goto(f"{pim_url}/products")
        page.check(f"#products tr[data-uuid='{uuid}'] input[type=checkbox]")
        page.click("#grid button[data-extension='flask_app_sync_selection']")
        assert "Queued 1 product" in (page.text_content("#action-answer") or "")
        wait_until(page, product, lambda text: "Synced from the grid" in text)
    finally:
        setup.stop()
