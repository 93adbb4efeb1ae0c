"""The sync feature's tests never read the developer's own settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.catalogs.settings import NAMES as CATALOG_NAMES
from app.sync.settings import NAMES
from tests.catalogs.pim_catalogs import configure
from tests.pims import FakePim, PimUser


@pytest.fixture(autouse=True)
def clean_sync_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the variables of the feature and of the one it builds on (catalogs)."""
    for name in (*NAMES, *CATALOG_NAMES):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def connected(app: Flask, pim: FakePim) -> Iterator[FakePim]:
    """The App connected to `pim`, its catalog enabled with 54 of 60 products (enabled ones)."""
    PimUser(app.test_client(), pim).connect()
    enable(pim)
    with app.app_context():
        yield pim


def enable(pim: FakePim, **extra: Any) -> None:
    """The PIM user enables the catalog: enabled products, titles from their English names."""
    form = {"catalog_enabled": "on", "enabled_only": "on", "source-title": "name"}
    configure(pim, **{**form, "locale-title": "en_US", **extra})
