"""The catalogs feature's tests never read the developer's own settings."""

from __future__ import annotations

import pytest

from app.catalogs.settings import NAMES


@pytest.fixture(autouse=True)
def clean_catalog_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the feature's variables (AKENEO_CATALOG_NAME) for each test."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
