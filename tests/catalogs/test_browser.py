"""The catalog as a person sees it: configured in the local PIM, shown by the App, in Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from launcher import LocalSetup
from tests.browsers import connect

pytestmark = pytest.mark.browser


def test_configure_the_catalog_in_the_pim_and_see_its_products(
    page: Any, local: LocalSetup
) -> None:
    pim_url = local.pim_urls[0]
    connect(page, pim_url, local.app_url)
    assert page.text_content("#catalog-name") == "Flask Akeneo App"
    assert page.text_content("#catalog-state") == "Disabled"
    assert "enable it, choose its products" in page.text_content("#catalog-notice")

    # Configure in your PIM (a new tab in real life): the PIM user's screen
    configure_url = page.get_attribute("#configure", "href")
    page.goto(configure_url)
    page.check("#catalog-enabled")
    page.check("#family-lamps")
    page.select_option("#source-title", "name")
    page.select_option("#locale-title", "de_DE")
    page.select_option("#source-main_image", "image")
    page.click("#save")
    page.wait_for_selector("#saved")

    page.goto(f"{local.app_url}/")
    assert page.text_content("#catalog-state") == "Enabled"
    titles = page.locator("#preview .title").all_text_contents()
    assert len(titles) == 5 and all(" lamp " in title for title in titles)

    page.click("#all-products")
    page.wait_for_selector("#products")
    # the seeded lamps (one product in four), enabled ones only (nine in ten): 12 of 60
    assert page.locator("#products tbody tr").count() == 12
    image = page.locator("#products img").first
    image.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth", image.element_handle()) == 480

    # disabled again in the PIM: the App explains, it never shows an empty list
    page.goto(configure_url)
    page.uncheck("#catalog-enabled")
    page.click("#save")
    page.wait_for_selector("#saved")
    page.goto(f"{local.app_url}/")
    assert page.text_content("#catalog-state") == "Disabled"
    assert "The catalog is disabled" in page.text_content("#catalog-notice")
    assert page.locator("#preview").count() == 0
