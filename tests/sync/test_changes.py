"""Single products read again (or dropped) on an event: against the local PIM, in this process,
and beside a run that reads every page at the same moment."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from kombu.exceptions import OperationalError as BrokerDown
from sqlalchemy import event, update

from app import current
from app.catalogs import current as catalogs_current
from app.sync import QueueDown, copy, queue_changes, tasks
from app.sync import current as sync_current
from app.sync.changes import READERS, ChangeRow
from app.sync.tasks import APPLY
from devpim.products import Catalog
from tests.pims import FakePim, run_together

from .conftest import enable
from .helpers import (
    copy_of,
    mapped_calls,
    products_of,
    queued_jobs,
    run_sync,
    sync_store,
)

NAME = "name"


def rename(pim: FakePim, uuid: str, title: str) -> None:
    products_of(pim).upsert(
        uuid, {"values": {NAME: [{"locale": "en_US", "scope": None, "data": title}]}}
    )


def single_reads(pim: FakePim) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in pim.requests if "/mapped-products/" in r.path]


def selected_product(pim: FakePim, number: int = 4) -> str:
    uuid = Catalog.seed_uuid(number)
    assert uuid in copy_of(pim)
    return uuid


def test_changed_products_are_read_again_and_deleted_ones_dropped(connected: FakePim) -> None:
    run_sync(connected)
    renamed, deleted = selected_product(connected, 4), selected_product(connected, 7)
    rename(connected, renamed, "Renamed live")
    products_of(connected).delete(deleted)

    queue_changes(connected.url, {renamed: False, deleted: True})
    assert tasks.apply_changes(connected.url) == 2

    copy = copy_of(connected)
    assert copy[renamed]["title"] == "Renamed live"
    assert deleted not in copy and len(copy) == 53
    assert single_reads(connected) == [renamed]  # a deletion costs no call
    assert sync_current.changes().count(connected.url) == 0


def test_a_product_outside_the_selection_leaves_the_copy(connected: FakePim) -> None:
    run_sync(connected)
    enable(connected, family="mugs")  # the PIM user narrows the selection
    outside = next(
        u for u in copy_of(connected) if products_of(connected).get(u)["family"] != "mugs"
    )  # type: ignore[index]
    queue_changes(connected.url, {outside: False})  # events are not filtered by catalog
    tasks.apply_changes(connected.url)
    assert outside not in copy_of(connected)


def test_many_events_for_one_product_make_one_read(connected: FakePim) -> None:
    run_sync(connected)
    uuid = selected_product(connected)
    for title in ("One", "Two", "Three"):
        rename(connected, uuid, title)
        queue_changes(connected.url, {uuid: False})
    tasks.apply_changes(connected.url)
    assert single_reads(connected) == [uuid]
    assert copy_of(connected)[uuid]["title"] == "Three"


def test_a_run_never_puts_an_older_reading_over_a_newer_one(connected: FakePim) -> None:
    """The race the read times settle: a run's page asked for before an event's read (or before
    a deletion) is saved after it. The copy keeps the newer reading, and the deleted stays gone."""
    run_sync(connected)
    renamed, deleted = selected_product(connected, 4), selected_product(connected, 7)
    old_page = [dict(copy_of(connected)[renamed]), dict(copy_of(connected)[deleted])]
    asked_at = datetime.now(UTC) - timedelta(seconds=5)  # the run asked for its page then

    rename(connected, renamed, "Newer")
    products_of(connected).delete(deleted)
    queue_changes(connected.url, {renamed: False, deleted: True})
    tasks.apply_changes(connected.url)

    catalog_id = catalogs_current.store().catalog_id(connected.url)
    assert catalog_id
    run_id = sync_store().request(connected.url, catalog_id, full=True)
    assert run_id
    run = sync_store().acquire(connected.url, run_id)
    assert run
    sync_store().save_uuids(run, [renamed, deleted], None)
    sync_store().save_products(run, old_page, None, asked_at)  # the slow page lands now

    copy = copy_of(connected)
    assert copy[renamed]["title"] == "Newer"
    assert deleted not in copy


def test_a_pim_that_fails_leaves_the_changes_for_the_next_job(connected: FakePim) -> None:
    run_sync(connected)
    uuid = selected_product(connected)
    rename(connected, uuid, "Later")
    catalog_id = catalogs_current.store().catalog_id(connected.url)
    path = f"/api/rest/v1/catalogs/{catalog_id}/mapped-products/{uuid}"
    connected.overrides[("GET", path)] = lambda: (500, {}, b'{"code": 500, "message": "Boom"}')
    queue_changes(connected.url, {uuid: False})
    assert tasks.apply_changes(connected.url) == 0
    assert sync_current.changes().count(connected.url) == 1
    assert copy_of(connected)[uuid]["title"] != "Later"

    del connected.overrides[("GET", path)]
    tasks.apply_changes(connected.url)
    assert copy_of(connected)[uuid]["title"] == "Later"


def test_a_webhook_does_not_count_a_long_backlog_for_every_event(connected: FakePim) -> None:
    changes = sync_current.changes()
    queue_changes(connected.url, {str(uuid.uuid4()): False for _ in range(3000)})
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(changes.engine, "before_cursor_execute", seen)
    try:
        for _ in range(20):
            changes.note(connected.url, {str(uuid.uuid4()): False})
    finally:
        event.remove(changes.engine, "before_cursor_execute", seen)
    counts = [s for s in statements if "count(" in s.lower()]
    assert len(counts) <= 1  # one count stands for a second, far below the cap
    assert changes.count(connected.url) == 3020


def test_a_slow_pim_never_has_a_product_read_by_two_jobs(
    app: Flask, connected: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_sync(connected)
    # a claim of 2 s over reads of 0.5 s, 4 at a time: the batch would take 3 s
    monkeypatch.setattr("app.sync.changes.CLAIM", timedelta(seconds=2))
    monkeypatch.setattr("app.sync.changes.SAVE_MARGIN", 0.2)
    connected.state.pace.latency = 0.5
    uuids = [u for u in map(Catalog.seed_uuid, range(1, 61)) if u in copy_of(connected)][:24]
    for product in uuids:
        rename(connected, product, "Read once")
    queue_changes(connected.url, dict.fromkeys(uuids, False))
    before = len(single_reads(connected))
    ended: list[float] = []

    def job(start_after: float) -> None:
        time.sleep(start_after)  # the second worker takes the job once the first claim ran out
        with app.app_context():
            while sync_current.changes().count(connected.url):
                started = time.monotonic()
                tasks.apply_changes(connected.url)
                ended.append(time.monotonic() - started)

    run_together(lambda: job(0), lambda: job(2.5))
    reads = single_reads(connected)[before:]
    assert sorted(reads) == sorted(uuids)  # each product once, none by two jobs
    assert connected.state.pace.most() <= READERS  # one job's readers at a time
    assert max(ended) < 2.0  # no job outlived its claim
    assert all(copy_of(connected)[u]["title"] == "Read once" for u in uuids)


def test_changes_noted_while_the_broker_is_down_are_applied_once_it_is_back(
    connected: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_sync(connected)
    uuid = selected_product(connected)
    rename(connected, uuid, "After the outage")

    def broker_down(*_: Any, **__: Any) -> None:
        raise BrokerDown("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(sync_current.celery(), "send_task", broker_down)
        with pytest.raises(QueueDown, match="does not answer"):
            queue_changes(connected.url, {uuid: False})
    assert sync_current.changes().count(connected.url) == 1  # kept: nothing is lost

    tasks.declare_queue(sync_current.celery())  # as a worker does when it starts
    assert tasks.sweep() == 0 and queued_jobs(APPLY) == []  # noticed just now: its job may come
    with current.database().engine.begin() as db:  # half a minute later, no job took it
        db.execute(update(ChangeRow).values(noticed_at=datetime.now(UTC) - timedelta(minutes=1)))
        # (and the run that read it before its change, earlier still)
        earlier = datetime.now(UTC) - timedelta(minutes=2)
        db.execute(update(copy.product_table).values(synced_at=earlier))
    tasks.sweep()
    assert queued_jobs(APPLY) == [[connected.url]]
    tasks.apply_changes(connected.url)
    assert copy_of(connected)[uuid]["title"] == "After the outage"


def test_too_many_waiting_changes_ask_the_sender_to_slow_down(
    connected: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.sync.changes.MAX_WAITING", 2)
    queue_changes(connected.url, {Catalog.seed_uuid(1): False, Catalog.seed_uuid(2): False})
    with pytest.raises(QueueDown, match="changes wait"):
        queue_changes(connected.url, {Catalog.seed_uuid(3): False})
    assert not mapped_calls(connected)


# -- bulk changes (a real PIM: an import sends one event per product) ---------------------------


@pytest.fixture
def coalescing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk change is a few dozen waiting reads here (not 100), settled at once."""
    monkeypatch.setattr("app.sync.changes.COALESCE_AT", 10)
    monkeypatch.setattr("app.sync.changes.SETTLE", timedelta(0))
    monkeypatch.setattr("app.sync.changes.FRESH", timedelta(0))
    monkeypatch.setattr("app.sync.changes.UNLISTED", timedelta(0))


def test_a_bulk_change_is_read_with_one_listing_not_one_call_a_product(
    connected: FakePim, coalescing: None
) -> None:
    run_sync(connected)
    renamed = sorted(copy_of(connected))[:30]
    for product in renamed:
        rename(connected, product, "Imported")
    outside = next(u for _, u in products_of(connected).keys("uuid") if u not in copy_of(connected))
    queue_changes(connected.url, dict.fromkeys([*renamed, outside], False))
    listed_before = len(mapped_calls(connected))

    assert tasks.apply_changes(connected.url) == 0  # none read one by one
    assert single_reads(connected) == []
    listings = mapped_calls(connected)[listed_before:]
    assert len(listings) == 1 and "updated_after" in listings[0].query
    copy = copy_of(connected)
    assert all(copy[u]["title"] == "Imported" for u in renamed)
    assert sync_current.changes().count(connected.url) == 0  # the unlisted one is dropped too


def test_a_change_whose_product_was_read_after_it_costs_no_call(
    connected: FakePim, coalescing: None
) -> None:
    run_sync(connected)
    product = selected_product(connected)
    rename(connected, product, "Read by the run")
    queue_changes(connected.url, {product: False})
    run_sync(connected)  # a run read it after the change was noticed
    calls = len(connected.requests)
    tasks.apply_changes(connected.url)
    assert len(connected.requests) == calls and single_reads(connected) == []
    assert sync_current.changes().count(connected.url) == 0
