"""The sync's tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from app.db import Database
from app.sync.store import LeaseLost, SyncStore

PIM = "https://my-pim.cloud.akeneo.com"


@pytest.fixture
def syncs(database: Database) -> SyncStore:
    return SyncStore(database.engine)


def test_a_sync_run_is_leased_saved_page_by_page_and_finished(syncs: SyncStore) -> None:
    run_id = syncs.request(PIM, "catalog-1", full=False)
    assert run_id and syncs.request(PIM, "catalog-1", full=True) is None  # one at a time
    run = syncs.acquire(PIM, run_id)
    assert run and run.full and syncs.acquire(PIM, run_id) is None  # the lease is held
    uuids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(3)]
    syncs.save_uuids(run, uuids, None)
    run = syncs.acquire(PIM, run_id, run.token)  # the next job, with the lease's token
    assert run and run.phase == "products"
    syncs.save_products(run, [{"uuid": u, "title": f"T{u[-1]}"} for u in uuids[:2]], "/next")
    syncs.save_products(run, [{"uuid": uuids[2], "title": "Ü"}], None)
    syncs.save_products(run, [{"uuid": uuids[2], "title": "Ü"}], None)  # saved again: replaced
    assert syncs.finish(run) == 0
    status = syncs.status(PIM)
    assert status and (status.state, status.total) == ("finished", 3)
    assert [p["title"] for p in syncs.products(PIM, "catalog-1", limit=10)] == ["T0", "T1", "Ü"]
    assert len(syncs.products(PIM, "catalog-1", limit=10)) == 3

    later = syncs.request(PIM, "catalog-1", full=False)  # the next one is incremental
    run = syncs.acquire(PIM, later)  # type: ignore[arg-type]
    assert run and not run.full and run.since is not None
    syncs.save_uuids(run, uuids[:2], None)  # one product left the selection
    run = syncs.acquire(PIM, later, run.token)  # type: ignore[arg-type]
    assert run
    syncs.save_products(run, [], None)
    assert syncs.finish(run) == 1 and len(syncs.products(PIM, "catalog-1", limit=10)) == 2
    with pytest.raises(LeaseLost):
        syncs.renew(run)  # finished: the lease is gone
