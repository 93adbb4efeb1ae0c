"""Live changes as a person sees them on `make run`: rename a product in the local PIM, and the
App's products page shows the new name within seconds, with no Sync now; delete one, it goes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from launcher import start_local
from tests.browsers import connect
from tests.pims import SECRET_KEY

pytestmark = pytest.mark.browser


def wait_until(page: Any, url: str, check: Any, seconds: float = 15) -> float:
    """Reload `url` until `check(text)` holds; the seconds it took."""
    started = time.monotonic()
    while True:
        page.goto(url)
        if check(page.text_content("body") or ""):
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, page.text_content("body")
        page.wait_for_timeout(200)


def test_a_product_renamed_in_the_pim_reaches_the_products_page_without_sync_now(
    page: Any, tmp_path: Path
) -> None:
    setup = start_local(
        app_config={
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "AKENEO_SYNC_INTERVAL": "0",  # no periodic sync: only the event can bring it
        },
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
        wait_until(page, f"{app_url}/", lambda text: "Last sync finished" in text, 60)
        assert "Waiting to activate" in page.text_content("#events-text")

        page.goto(f"{pim_url}/products")
        row = page.locator("#products tr[data-uuid]").first
        uuid = row.get_attribute("data-uuid")
        row.locator("input[name=name]").fill("Renamed live in the PIM")
        row.locator("button", has_text="Rename").click()
        page.wait_for_selector("#saved")
        product = f"{app_url}/products/{uuid}"
        took = wait_until(page, product, lambda text: "Renamed live in the PIM" in text)
        assert took < 10
        page.goto(f"{app_url}/")
        assert "Live: changes in the PIM reach the copy" in page.text_content("#events-text")

        page.goto(f"{pim_url}/products")
        page.locator(f"#products tr[data-uuid='{uuid}'] button", has_text="Delete").click()
        page.wait_for_selector("#saved")
        wait_until(page, product, lambda text: "not in the App's catalog" in text)
        assert "Renamed live in the PIM" not in (page.text_content("body") or "")
    finally:
        setup.stop()
