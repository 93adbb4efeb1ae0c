"""The sync feature's tests never read the developer's own settings."""

from __future__ import annotations

import pytest

from app.catalogs.settings import NAMES as CATALOG_NAMES
from app.sync.settings import NAMES


@pytest.fixture(autouse=True)
def clean_sync_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the variables of the feature and of the one it builds on (catalogs)."""
    for name in (*NAMES, *CATALOG_NAMES):
        monkeypatch.delenv(name, raising=False)
