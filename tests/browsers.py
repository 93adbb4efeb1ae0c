"""Browser fixtures (conftest.py registers them): headless Chromium (Debian's package) driven by
Playwright, and the App with local PIMs on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from launcher import LocalSetup, start_local
from tests.pims import SECRET_KEY
from tests.servers import unavailable

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    if not shutil.which(CHROMIUM):
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def local_app_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """The settings of the App of a local set-up in a test: its own database in `tmp_path`."""
    return {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        **extra,
    }


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalSetup]:
    """The App and two local PIMs, each on a free loopback port, stopped after the test."""
    setup = start_local(pim_ports=[0, 0], app_config=local_app_config(tmp_path))
    yield setup
    setup.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies) and page."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def connect(page: Any, pim_url: str, app_url: str) -> None:
    """In the PIM: click Connect, then Allow; wait for the App's page."""
    page.goto(pim_url)
    page.click("#connect")
    page.wait_for_selector("#requested-scopes")
    page.click("#allow")
    page.wait_for_url(f"{app_url}/")
