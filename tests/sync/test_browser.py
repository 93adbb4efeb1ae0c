"""The sync as a person sees it: a real worker, the progress bar, the products page on the copy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from launcher import start_local
from tests.browsers import connect, local_app_config

pytestmark = pytest.mark.browser


def test_the_sync_shows_its_progress_then_the_products_page_reads_the_copy(
    page: Any, tmp_path: Path
) -> None:
    setup = start_local(
        app_config=local_app_config(tmp_path, AKENEO_SYNC_INTERVAL="0"),
        pim_config={"PRODUCT_COUNT": "600"},
        worker_dir=tmp_path,  # a real Celery worker, as `make run` starts one
    )
    try:
        pim_url, app_url = setup.pim_urls[0], setup.app_url
        connect(page, pim_url, app_url)
        # a far PIM: each catalog page takes 0.6 s, so the bar has time to move
        pim = setup.servers[1].app.extensions["devpim"]
        pim.inject("GET", "/api/rest/v1/catalogs/", None, delay=0.6, times=10_000)
        page.goto(page.get_attribute("#configure", "href"))
        page.check("#catalog-enabled")
        page.select_option("#source-title", "name")
        page.click("#save")
        page.wait_for_selector("#saved")

        page.goto(f"{app_url}/")  # the page sees the catalog enabled: a sync starts
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        while "Last sync finished" not in (page.text_content("#sync-state") or ""):
            assert time.monotonic() < deadline, page.text_content("#sync-state")
            try:
                value = page.evaluate(
                    "() => { const bar = document.getElementById('sync-progress');"
                    " return bar && !bar.hidden && bar.hasAttribute('value') ? bar.value : null; }"
                )
            except PlaywrightError:  # the page reloads itself once the sync is done
                continue
            if value:
                seen.add(int(value))
            page.wait_for_timeout(100)
        assert len(seen) >= 2, seen  # the bar moved as the pages came in
        assert "540 products read, 0 removed" in page.text_content("#sync-state")

        page.click("#all-products")
        page.wait_for_selector("#products")
        assert "into the App's copy" in page.text_content("#synced-at")
        assert page.locator("#products tbody tr").count() == 25
        page.click("#next-page")
        assert page.locator("#products tbody tr").count() == 25
        page.click("#previous-page")
        assert page.locator("#products tbody tr").count() == 25

        # a search over the copy, then one product's page
        title = page.locator("#products .product-link").first.text_content() or ""
        page.fill("#search", title.split()[-1])  # the product's number: few titles hold it
        page.click(".search button")
        page.wait_for_selector("#matched")
        assert title in page.locator("#products .product-link").all_text_contents()
        page.click(f"#products .product-link >> text='{title}'")
        page.wait_for_selector("#product-title")
        assert page.text_content("#product-title") == title
        assert "Read from the PIM into the App's copy" in page.text_content("#read-at")
        assert (page.get_attribute("#in-pim", "href") or "").startswith(f"{pim_url}/#/enrich/")

        # the App disconnected in the PIM, then connected again: each page says one true thing
        page.goto(pim_url)
        page.click("#revoke")
        page.goto(f"{app_url}/")
        assert page.title().startswith("Disconnected") and page.locator("#revoked").count() == 1
        page.goto(f"{app_url}/products")
        assert page.url == f"{app_url}/"  # no old copy served without a word
        connect(page, pim_url, app_url)
        assert page.text_content("#catalog-state") == "Disabled"  # a new catalog (§2.6)
        assert page.locator("#sync").count() == 0  # no old run, no Sync now that would fail
    finally:
        setup.stop()
