"""What the sync's tests, and those of the features built on it, do with the local PIM, the copy
and the App's broker (the SQL transport)."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import text

from app import current
from app.catalogs import current as catalogs_current
from app.sync import current as sync_current
from app.sync.steps import step
from app.sync.store import SyncStore
from app.sync.tasks import STEP
from devpim.catalogs import selected
from devpim.products import Catalog
from tests.catalogs.pim_catalogs import the_catalog
from tests.pims import FakePim

MAPPED = "mapped-products"


def products_of(pim: FakePim) -> Catalog:
    return pim.app.extensions["devpim_catalog"]  # type: ignore[no-any-return]


def selected_uuids(pim: FakePim) -> set[str]:
    """What the PIM's catalog selects, by the local PIM's own rules (§2.3)."""
    catalog, products = the_catalog(pim), products_of(pim)
    found = (products.get(product_uuid) for _, product_uuid in products.keys("uuid"))
    return {p["uuid"] for p in found if p is not None and selected(catalog, p)}


def sync_store() -> SyncStore:
    return sync_current.store()


def run_sync(pim: FakePim, *, full: bool = False) -> list[str]:
    """Queue a run and play its jobs to the end, as a worker would; the outcomes of the steps."""
    catalog_id = catalogs_current.store().catalog_id(pim.url)
    assert catalog_id
    run_id = sync_store().request(pim.url, catalog_id, full=full)
    assert run_id
    return play(pim.url, run_id)


def play(pim_url: str, run_id: str, token: str | None = None) -> list[str]:
    """Run a run's steps one after the other, each job passing its lease to the next."""
    outcomes = []
    while True:
        # seconds=0: one page a step, the hardest case for saving the place between steps
        result = step(sync_store(), current.app_api(pim_url), pim_url, run_id, token, seconds=0)
        outcomes.append(result.outcome)
        if result.outcome != "more":
            return outcomes
        token = result.token


def copy_of(pim: FakePim) -> dict[str, dict[str, Any]]:
    catalog_id = catalogs_current.store().catalog_id(pim.url)
    assert catalog_id
    rows = sync_store().products(pim.url, catalog_id, limit=10_000)
    return {row["uuid"]: row for row in rows}


def mapped_calls(pim: FakePim) -> list[Any]:
    return [r for r in pim.requests if r.path.endswith(f"/{MAPPED}")]


def queued_jobs(task: str = STEP) -> list[list[Any]]:
    """The arguments of the `task` jobs waiting on the App's broker (the SQL transport)."""
    with current.database().engine.begin() as db:
        payloads = db.execute(text("SELECT payload FROM kombu_message WHERE visible")).scalars()
        messages = [json.loads(p) for p in payloads]
    return [
        json.loads(base64.b64decode(m["body"]))[0] for m in messages if m["headers"]["task"] == task
    ]


def drop_queued() -> None:
    """Drop every job waiting on the App's broker."""
    with current.database().engine.begin() as db:
        db.execute(text("DELETE FROM kombu_message"))
