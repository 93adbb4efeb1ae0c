"""The sync's tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import Database, now
from app.sync import copy
from app.sync.store import LeaseLost, PageRefused, Run, SyncStore

PIM = "https://my-pim.cloud.akeneo.com"


def reading_products(syncs: SyncStore, uuids: list[str]) -> Run:
    """A full run that has read the selection `uuids`: the next job, to read the products."""
    run_id = syncs.request(PIM, "catalog-1", full=True)
    run = syncs.acquire(PIM, run_id)  # type: ignore[arg-type]
    assert run
    syncs.save_uuids(run, uuids, None)
    run = syncs.acquire(PIM, run_id, run.token)  # type: ignore[arg-type]
    assert run and run.phase == "products"
    return run


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
    assert syncs.finish(run) is None  # it would remove one: the selection is read once more
    run = syncs.acquire(PIM, later, run.token)  # type: ignore[arg-type]
    assert run and run.phase == "recheck"
    syncs.save_uuids(run, uuids[:2], None)  # the second reading agrees
    run = syncs.acquire(PIM, later, run.token)  # type: ignore[arg-type]
    assert run and run.phase == "checked"
    assert syncs.finish(run) == 1 and len(syncs.products(PIM, "catalog-1", limit=10)) == 2
    with pytest.raises(LeaseLost):
        syncs.renew(run)  # finished: the lease is gone


def test_a_page_read_again_stops_the_run_and_a_page_older_than_a_deletion_stores_nothing_of_it(
    syncs: SyncStore,
) -> None:
    uuids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(3)]
    deleted_at = now()
    with syncs.engine.begin() as db:  # an event said the second product was deleted…
        copy.remove(db, PIM, uuids[1], deleted_at)
    run = reading_products(syncs, uuids)  # …after the PIM answered this page of uuids
    products = [{"uuid": u, "title": u[-1]} for u in uuids]
    before = deleted_at - timedelta(seconds=5)
    assert syncs.save_products(run, products, "/page-2", before) == 2  # not the deleted one
    after = deleted_at + timedelta(seconds=1)  # a later reading: it is back in the catalog
    assert syncs.save_products(run, products[1:2], "/page-3", after) == 1
    with pytest.raises(PageRefused, match="links back"):
        syncs.save_products(run, products, "/page-2", before)  # the list came back to page 2


def test_a_job_delivered_twice_never_runs_beside_its_twin(syncs: SyncStore) -> None:
    run_id = syncs.request(PIM, "catalog-1", full=True)
    first = syncs.acquire(PIM, run_id)  # type: ignore[arg-type]
    assert first
    handed = first.token  # what the next job's message carries
    second = syncs.acquire(PIM, run_id, handed)  # type: ignore[arg-type]
    assert second and second.token != handed  # the lease moved on with a new token
    assert syncs.acquire(PIM, run_id, handed) is None  # the redelivered twin of that message


def test_a_page_listing_a_uuid_twice_or_more_uuids_than_a_statement_takes_is_stored(
    syncs: SyncStore,
) -> None:
    many = [f"{n:08d}-0000-0000-0000-000000000000" for n in range(70_000)]
    run = reading_products(syncs, many + many[:10])  # over PostgreSQL's 65,535 parameters
    assert syncs.status(PIM).total == 70_000  # type: ignore[union-attr]
    twice = [{"uuid": many[0], "title": "a"}, {"uuid": many[0], "title": "b"}]
    assert syncs.save_products(run, twice, "/next") == 1


def test_the_copy_is_searched_and_paged_both_ways_on_each_database(syncs: SyncStore) -> None:
    from app.catalogs.catalog import PageQuery
    from app.sync.reader import CopyReader

    uuids = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(7)]
    run = reading_products(syncs, uuids)
    products = [
        {"uuid": u, "title": f"Red lamp {n}" if n % 2 else f"Blue mug {n}", "sku": f"SKU-{n}%"}
        for n, u in enumerate(uuids)
    ]
    syncs.save_products(run, products, None)
    assert syncs.finish(run) == 0
    copy = CopyReader(syncs)
    found = copy.page(PIM, "catalog-1", PageQuery(2, search="LAMP"))
    assert found and (found.total, found.matched) == (7, 3)
    assert [p["title"] for p in found.products] == ["Red lamp 1", "Red lamp 3"]
    later = copy.page(PIM, "catalog-1", PageQuery(2, after=found.next_cursor, search="lamp"))
    assert later and [p["title"] for p in later.products] == ["Red lamp 5"]
    assert later.next_cursor is None and later.previous_cursor == uuids[5]
    back = copy.page(PIM, "catalog-1", PageQuery(2, before=later.previous_cursor, search="lamp"))
    assert back and [p["uuid"] for p in back.products] == [uuids[1], uuids[3]]
    assert back.previous_cursor is None and back.next_cursor == uuids[3]
    percent = copy.page(PIM, "catalog-1", PageQuery(10, search="4%"))  # a wildcard, taken as is
    assert percent and [p["sku"] for p in percent.products] == ["SKU-4%"]
    assert copy.product(PIM, "catalog-1", uuids[2])[0]["title"] == "Blue mug 2"  # type: ignore[index]
