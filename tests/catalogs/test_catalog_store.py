"""The catalogs feature's tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.catalogs.store import CatalogClaimRow, CatalogStore
from app.db import Database

PIM = "https://my-pim.cloud.akeneo.com"


@pytest.fixture
def catalogs(database: Database) -> CatalogStore:
    return CatalogStore(database.engine)


def test_one_request_at_a_time_may_create_a_pims_catalog(catalogs: CatalogStore) -> None:
    assert catalogs.claim(PIM) is True
    assert catalogs.claim(PIM) is False  # another worker waits for it
    assert catalogs.claim("https://other.example.com") is True
    catalogs.release(PIM)
    assert catalogs.claim(PIM) is True
    with catalogs.engine.begin() as db:  # a request that crashed with its claim held
        db.execute(
            update(CatalogClaimRow).values(claimed_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert catalogs.claim(PIM) is True


def test_the_catalog_row_is_saved_again_in_place(catalogs: CatalogStore) -> None:
    assert catalogs.catalog_id(PIM) is None
    catalogs.save(PIM, "c-1")
    catalogs.save(PIM, "c-2")  # found again after a disconnect: replaced, never a second row
    assert catalogs.catalog_id(PIM) == "c-2"
    catalogs.forget(PIM)
    assert catalogs.catalog_id(PIM) is None
