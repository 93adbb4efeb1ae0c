"""The sync's steps against the local PIM, in this process: what a run reads, keeps and removes.

The same steps on real Celery workers (Redis and the App's own database as brokers, workers
killed half way) are in test_worker.py.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text, update

from app import create_app, current
from app.catalogs import current as catalogs_current
from app.catalogs import use_schema
from app.errors import TokenRevoked
from app.sync import current as sync_current
from app.sync.status import describe
from app.sync.steps import step
from app.sync.store import LeaseLost, SyncRow, SyncStore
from devpim.catalogs import AppCatalog
from devpim.products import Catalog
from tests.catalogs.pim_catalogs import catalogs_of, the_catalog
from tests.pims import FakePim, PimUser, app_config, form_token

from .conftest import enable
from .helpers import (
    MAPPED,
    copy_of,
    mapped_calls,
    play,
    products_of,
    queued_jobs,
    run_sync,
    selected_uuids,
    sync_store,
)

# -- full, then incremental -------------------------------------------------------------------


def test_a_first_sync_copies_every_selected_product_with_its_mapped_values(
    connected: FakePim,
) -> None:
    outcomes = run_sync(connected)
    copy = copy_of(connected)
    assert set(copy) == selected_uuids(connected) and len(copy) == 54
    some = next(iter(copy.values()))
    assert some["title"] == products_of(connected).get(some["uuid"])["values"]["name"][0]["data"]  # type: ignore[index]
    assert outcomes == ["finished"]  # one page of uuids, one of products: one step
    status = sync_store().status(connected.url)
    assert status and (status.state, status.total, status.last_done, status.last_removed) == (
        "finished",
        54,
        54,
        0,
    )
    assert not any("updated_after" in call.query for call in mapped_calls(connected))


def test_the_next_sync_reads_only_what_changed_since_the_last_one_started(
    connected: FakePim,
) -> None:
    run_sync(connected)
    before = len(mapped_calls(connected))
    changed = Catalog.seed_uuid(4)
    products_of(connected).upsert(
        changed, {"values": {"name": [{"locale": "en_US", "scope": None, "data": "Renamed"}]}}
    )
    run_sync(connected)
    calls = mapped_calls(connected)[before:]
    (since,) = calls[0].query["updated_after"]
    started = sync_store().status(connected.url)
    assert started and started.last_finished_at
    assert datetime.fromisoformat(since) < datetime.now(UTC)  # full ISO 8601, with its offset
    assert since.endswith("+00:00")
    assert len(calls) == 1  # one page: the changed product only
    copy = copy_of(connected)
    assert copy[changed]["title"] == "Renamed" and len(copy) == 54
    status = sync_store().status(connected.url)
    assert status and (status.full, status.last_done, status.last_removed) == (False, 1, 0)


def test_products_that_leave_the_selection_are_removed(connected: FakePim) -> None:
    run_sync(connected)
    enable(connected, family="mugs")  # the PIM user narrows the selection
    run_sync(connected)
    copy = copy_of(connected)
    assert set(copy) == selected_uuids(connected)
    assert 0 < len(copy) < 54
    status = sync_store().status(connected.url)
    assert status and status.last_removed == 54 - len(copy)


def test_products_that_join_the_selection_without_changing_are_found(connected: FakePim) -> None:
    enable(connected, family="mugs")
    run_sync(connected)
    narrow = len(copy_of(connected))
    enable(connected)  # widened: the new ones keep their old `updated`
    run_sync(connected)
    copy = copy_of(connected)
    assert set(copy) == selected_uuids(connected) and len(copy) == 54 > narrow
    status = sync_store().status(connected.url)
    assert status and status.full  # the incremental run switched to reading everything


def test_sync_now_reads_everything_and_sees_a_new_mapping(connected: FakePim) -> None:
    run_sync(connected)
    enable(connected, **{"source-title": "sku"})  # mapping changed: no product's `updated` moves
    run_sync(connected, full=True)
    assert all(row["title"].startswith("SKU-") for row in copy_of(connected).values())


# -- a run stopped half way goes on from its cursor --------------------------------------------


@pytest.mark.usefixtures("small_pages")
def test_a_run_that_failed_half_way_goes_on_from_its_cursor_with_exact_counts(
    connected: FakePim,
) -> None:
    catalog = the_catalog(connected)
    path = f"/api/rest/v1/catalogs/{catalog.id}/{MAPPED}"

    def down() -> tuple[int, dict[str, str], bytes]:  # longer than the client retries
        return 503, {"Content-Type": "text/html"}, b"<h1>Service Unavailable</h1>"

    first = run_until_second_products_page(connected, path, down)
    assert first[-1] == "failed"
    status = sync_store().status(connected.url)
    assert status and status.state == "failed" and status.done == 25
    assert "next sync goes on from there" in (status.message or "")

    del connected.overrides[("GET", path)]
    assert run_sync(connected)[-1] == "finished"
    first_pages = [c for c in mapped_calls(connected) if not c.query.get("search_after")]
    assert len(first_pages) == 1  # the resumed run went on from its cursor, not from zero
    assert len(copy_of(connected)) == 54
    status = sync_store().status(connected.url)
    assert status and (status.state, status.last_done) == ("finished", 54)


def run_until_second_products_page(pim: FakePim, path: str, failure: Any) -> list[str]:
    """A run whose products come 25 a page; from the second page on, `failure` answers."""
    catalog_id = catalogs_current.store().catalog_id(pim.url)
    assert catalog_id
    run_id = sync_store().request(pim.url, catalog_id, full=False)
    assert run_id
    outcomes: list[str] = []
    token = None
    while True:
        if sync_store().status(pim.url).done == 25:  # type: ignore[union-attr]
            pim.overrides[("GET", path)] = failure
        result = step(sync_store(), current.app_api(pim.url), pim.url, run_id, token, seconds=0)
        outcomes.append(result.outcome)
        if result.outcome != "more":
            return outcomes
        token = result.token


# -- one worker per PIM at a time ----------------------------------------------------------------


def test_one_run_per_pim_at_a_time_and_a_dead_workers_lease_runs_out(connected: FakePim) -> None:
    catalog_id = catalogs_current.store().catalog_id(connected.url)
    assert catalog_id
    run_id = sync_store().request(connected.url, catalog_id, full=False)
    assert run_id and sync_store().request(connected.url, catalog_id, full=True) is None
    held = sync_store().acquire(connected.url, run_id)
    assert held and sync_store().acquire(connected.url, run_id) is None  # another job: skipped
    skipped = step(sync_store(), current.app_api(connected.url), connected.url, run_id)
    assert skipped.outcome == "skipped"
    assert sync_store().to_requeue() == []  # its worker is alive

    expire_lease(connected.url)  # the worker was killed: nobody renews the lease
    assert sync_store().to_requeue() == [(connected.url, run_id)]
    taken = sync_store().acquire(connected.url, run_id)
    assert taken and taken.token != held.token
    with pytest.raises(LeaseLost, match=connected.url):
        sync_store().renew(held)  # the old worker, if it comes back, writes nothing more


def expire_lease(pim_url: str) -> None:
    with current.database().engine.begin() as db:
        db.execute(
            update(SyncRow)
            .where(SyncRow.pim_url == pim_url)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )


# -- causes that stop a run ---------------------------------------------------------------------


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 20 uuids and 25 products: a run of several steps over the 54 products."""
    monkeypatch.setattr("app.sync.steps.UUIDS_PER_PAGE", 20)
    monkeypatch.setattr("app.sync.steps.PRODUCTS_PER_PAGE", 25)


@pytest.mark.usefixtures("small_pages")
def test_a_catalog_disabled_mid_sync_stops_it_with_the_reason_and_it_starts_again(
    connected: FakePim, app: Flask
) -> None:
    catalog: AppCatalog = the_catalog(connected)
    run_id = sync_store().request(connected.url, catalog.id, full=False)
    assert run_id
    first = step(sync_store(), current.app_api(connected.url), connected.url, run_id, seconds=0)
    assert first.outcome == "more"
    catalog.enabled = False  # a PIM user disables it in the PIM
    stopped = step(sync_store(), current.app_api(connected.url), connected.url, run_id, first.token)
    assert stopped.outcome == "stopped"
    status = sync_store().status(connected.url)
    assert (
        status and status.state == "stopped" and "The catalog is disabled" in (status.message or "")
    )

    browser = app.test_client()
    PimUser(browser, connected).connect()
    assert "The catalog is disabled" in browser.get("/").get_data(as_text=True)
    catalog.enabled = True  # enabled again: the next visit starts a sync
    browser.get("/")
    assert sync_store().status(connected.url).state == "queued"  # type: ignore[union-attr]


@pytest.mark.usefixtures("small_pages")
def test_a_token_revoked_mid_sync_stops_it_and_says_so(connected: FakePim) -> None:
    run_id = sync_store().request(connected.url, the_catalog(connected).id, full=False)
    assert run_id
    first = step(sync_store(), current.app_api(connected.url), connected.url, run_id, seconds=0)
    connected.app.test_client().post("/apps/revoke")  # the App is disconnected in the PIM
    assert not catalogs_of(connected).all()
    stopped = step(sync_store(), current.app_api(connected.url), connected.url, run_id, first.token)
    assert stopped.outcome == "stopped"
    status = sync_store().status(connected.url)
    assert status and "disconnected in the PIM" in (status.message or "")


def test_a_malformed_page_fails_the_run_with_a_message(connected: FakePim) -> None:
    catalog = the_catalog(connected)
    path = f"/api/rest/v1/catalogs/{catalog.id}/{MAPPED}"
    connected.answer("GET", path, body={"_embedded": {"items": [{"no": "uuid"}]}, "_links": {}})
    assert run_sync(connected)[-1] == "failed"
    status = sync_store().status(connected.url)
    assert status and "have no uuid" in (status.message or "")


# -- the pages ----------------------------------------------------------------------------------


def test_the_connected_page_starts_a_sync_and_shows_its_state(
    connected: FakePim, app: Flask
) -> None:
    browser: FlaskClient = app.test_client()
    PimUser(browser, connected).connect()  # the catalog is enabled: the callback queued a run
    status = browser.get("/sync/status", headers={"Accept": "application/json"}).get_json()
    assert status["state"] == "queued" and "a worker takes it in a moment" in status["text"]
    assert "celery" not in status["text"]  # the worker's command only when none takes it
    run_queued_jobs(connected)
    page = browser.get("/").get_data(as_text=True)
    assert "Last sync finished" in page and "54 products read" in page
    status = browser.get("/sync/status").get_json()
    assert (status["state"], status["last_done"], status["active"]) == ("finished", 54, False)


def test_the_products_page_reads_the_copy_once_synced(connected: FakePim, app: Flask) -> None:
    browser = app.test_client()
    PimUser(browser, connected).connect()
    run_queued_jobs(connected)
    before = len(connected.requests)
    page = browser.get("/products").get_data(as_text=True)
    assert "into the App's copy" in page
    assert len(connected.requests) == before  # no PIM call
    assert page.count("<tr>") == 1 + 25 and 'id="next-page"' in page
    after = page.split("after=")[1].split('"')[0]
    second = browser.get(f"/products?after={after}").get_data(as_text=True)
    assert second.count("<tr>") == 1 + 25


def test_sync_now_needs_the_forms_token_and_queues_a_full_run(
    connected: FakePim, app: Flask
) -> None:
    browser = app.test_client()
    PimUser(browser, connected).connect()
    run_queued_jobs(connected)
    assert browser.post("/sync").status_code == 400  # no CSRF token
    home = browser.get("/").get_data(as_text=True)
    token = form_token(home)
    answer = browser.post("/sync", data={"csrf_token": token})
    assert answer.status_code == 302
    status = sync_store().status(connected.url)
    assert status and (status.state, status.full) == ("queued", True)
    again = browser.post("/sync", data={"csrf_token": token}, follow_redirects=True)
    assert "already running" in again.get_data(as_text=True)


def test_the_status_endpoint_needs_a_signed_in_browser(app: Flask) -> None:
    answer = app.test_client().get("/sync/status")
    assert answer.status_code == 401 and "error" in answer.get_json()


def run_queued_jobs(pim: FakePim) -> None:
    """Play the sync job the App queued on its broker (the SQL transport, in the App's database);
    the other features' jobs are dropped."""
    status = sync_store().status(pim.url)
    assert status and status.state == "queued"
    (args,) = queued_jobs()
    with current.database().engine.begin() as db:
        db.execute(text("DELETE FROM kombu_message"))
    play(*args)


# -- the periodic jobs ----------------------------------------------------------------------------


def test_the_sweep_queues_a_stalled_run_again_and_trims_delivered_messages(
    connected: FakePim,
) -> None:
    from app.sync import tasks

    assert tasks.queue_sync(connected.url)
    ((pim_url, run_id, _),) = queued_jobs()
    assert sync_store().acquire(pim_url, run_id)  # a worker took it, then was killed
    with current.database().engine.begin() as db:  # its message was delivered two hours ago
        db.execute(
            text("UPDATE kombu_message SET visible = :no, timestamp = :then"),
            {"no": False, "then": datetime.now() - timedelta(hours=2)},
        )
    assert tasks.sweep() == 0  # its lease still runs: nothing to take up
    expire_lease(pim_url)
    assert tasks.sweep() == 1
    assert queued_jobs() == [[pim_url, run_id, None]]
    with current.database().engine.begin() as db:
        assert db.execute(text("SELECT count(*) FROM kombu_message")).scalar_one() == 1


def test_the_periodic_sync_queues_every_connected_pims_catalog(connected: FakePim) -> None:
    from app.sync import tasks

    assert tasks.sync_all() == 1
    assert tasks.sync_all() == 0  # still queued: not twice
    assert [job[0] for job in queued_jobs()] == [connected.url]


def test_a_broker_that_does_not_answer_only_delays_the_sync(
    tmp_path: Path, pim: FakePim, caplog: pytest.LogCaptureFixture
) -> None:
    from launcher import free_port

    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(app_config(tmp_path, CELERY_BROKER_URL=down))
    browser = app.test_client()
    PimUser(browser, pim).connect()
    enable(pim)
    assert browser.get("/").status_code == 200  # the page that queues the run still loads
    assert "the broker does not answer" in caplog.text
    with app.app_context():
        status = sync_store().status(pim.url)
        assert status and status.state == "queued"  # kept: the sweep queues it once it answers


def test_a_catalog_made_again_is_read_from_the_pim_until_its_first_sync(
    connected: FakePim, app: Flask
) -> None:
    browser = app.test_client()
    PimUser(browser, connected).connect()
    run_queued_jobs(connected)
    assert "into the App's copy" in browser.get("/products").get_data(as_text=True)
    connected.app.test_client().post("/apps/revoke")  # disconnected: its catalogs go with it
    PimUser(browser, connected).connect()  # connected again: a new, disabled catalog
    enable(connected)
    page = browser.get("/products").get_data(as_text=True)
    assert "into the App's copy" not in page  # the old copy is of another catalog
    assert page.count("<tr>") == 1 + 25


# -- the command line, and forgetting a PIM ----------------------------------------------------


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["akeneo", *args])
    return result.exit_code, result.output


def test_the_sync_command_queues_one_run_per_pim_for_the_workers(app: Flask, pim: FakePim) -> None:
    assert run(app, "sync") == (1, "Error: No PIM is connected yet.\n")
    PimUser(app.test_client(), pim).connect()
    assert run(app, "sync", "--pim", pim.url) == (0, "http://pim-a.test  queued\n")
    assert run(app, "sync") == (0, "http://pim-a.test  already queued or running\n")
    with app.app_context():
        status = sync_store().status(pim.url)
    assert status and status.state == "queued" and status.full  # the first run reads everything


def test_forgetting_a_pim_deletes_its_copy_and_its_runs(connected: FakePim, app: Flask) -> None:
    assert run_sync(connected)[-1] == "finished" and len(copy_of(connected)) == 54
    catalog_id = catalogs_current.store().catalog_id(connected.url)
    assert run(app, "forget", connected.url)[0] == 0
    assert sync_store().status(connected.url) is None
    assert sync_store().products(connected.url, str(catalog_id), limit=100) == []
    assert catalogs_current.store().catalog_id(connected.url) is None


def test_a_revoked_pim_keeps_its_copy_until_it_is_forgotten(connected: FakePim) -> None:
    assert run_sync(connected)[-1] == "finished"
    connected.app.test_client().post("/apps/revoke")  # Disconnect, as a PIM user does
    with pytest.raises(TokenRevoked):
        current.app_api(connected.url).get("/api/rest/v1/channels")
    assert len(copy_of(connected)) == 54  # kept: reconnecting finds it, `forget` drops it


# -- a PIM that answers short, loops, or sends what the database cannot hold -------------------


def uuids_path(pim: FakePim) -> str:
    return f"/api/rest/v1/catalogs/{the_catalog(pim).id}/product-uuids"


def mapped_path(pim: FakePim) -> str:
    return f"/api/rest/v1/catalogs/{the_catalog(pim).id}/{MAPPED}"


EMPTY_PAGE = {"_links": {}, "_embedded": {"items": []}}


def test_one_empty_selection_answer_costs_nothing_and_a_real_shrink_still_shrinks(
    connected: FakePim,
) -> None:
    run_sync(connected)
    connected.state.inject("GET", uuids_path(connected), 200, body=EMPTY_PAGE)  # once
    assert run_sync(connected)[-1] == "finished"
    assert len(copy_of(connected)) == 54  # the second reading of the selection agreed with none
    assert sync_store().status(connected.url).last_removed == 0  # type: ignore[union-attr]
    enable(connected, family="mugs")  # a real change of the selection
    run_sync(connected)
    assert set(copy_of(connected)) == selected_uuids(connected)


@pytest.mark.usefixtures("small_pages")
def test_a_selection_cut_short_on_its_second_page_costs_nothing(connected: FakePim) -> None:
    run_sync(connected)
    # page 2 of the uuids: well formed, empty, no next link (the PIM lost the rest)
    connected.state.inject("GET", uuids_path(connected) + "?search_after", 200, body=EMPTY_PAGE)
    connected.state.inject("GET", uuids_path(connected) + "?limit", 200, body=EMPTY_PAGE)
    assert run_sync(connected)[-1] == "finished"
    assert len(copy_of(connected)) == 54


def test_products_outside_the_selection_are_never_stored_and_an_endless_list_stops(
    connected: FakePim,
) -> None:
    stranger = {"uuid": "99999999-9999-4999-8999-999999999999", "title": "not selected"}
    looping = {"_links": {"next": {"href": f"{mapped_path(connected)}?search_after=a"}}}
    page = {**looping, "_embedded": {"items": [stranger]}}
    connected.answer("GET", mapped_path(connected), body=page)  # every page: the same again
    outcomes = run_sync(connected)
    assert outcomes[-1] == "stopped"
    assert stranger["uuid"] not in copy_of(connected)
    status = sync_store().status(connected.url)
    assert status and "never ends" in (status.message or "")
    assert run_sync(connected)  # not wedged: the next trigger starts a new run


def test_an_endless_list_of_new_products_stops_at_the_selections_size(
    connected: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.sync.store.SLACK", 5)
    run_sync(connected)
    selected = sorted(copy_of(connected))
    counter = iter(range(10_000))

    def endless() -> tuple[int, dict[str, str], bytes]:
        n = next(counter)
        items = [{"uuid": selected[(n * 25 + i) % 54], "title": f"v{n}"} for i in range(25)]
        body = {
            "_links": {"next": {"href": f"{mapped_path(connected)}?search_after=p{n}"}},
            "_embedded": {"items": items},
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    connected.overrides[("GET", mapped_path(connected))] = endless
    assert run_sync(connected, full=True)[-1] == "stopped"
    status = sync_store().status(connected.url)
    assert status and "longer than the catalog's selection" in (status.message or "")
    assert next(counter) < 10  # it stopped after a few pages, not at the end of the stream


def test_an_endless_list_of_products_the_selection_never_listed_stops_too(
    connected: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.sync.store.SLACK", 5)
    run_sync(connected)
    counter = iter(range(10_000))

    def made_up() -> tuple[int, dict[str, str], bytes]:
        n = next(counter)  # none of these is stored: only what is read can bound the run
        items = [{"uuid": str(uuid.uuid4()), "title": f"v{n}"} for _ in range(25)]
        body = {
            "_links": {"next": {"href": f"{mapped_path(connected)}?search_after=p{n}"}},
            "_embedded": {"items": items},
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    connected.overrides[("GET", mapped_path(connected))] = made_up
    assert run_sync(connected, full=True)[-1] == "stopped"
    status = sync_store().status(connected.url)
    assert status and "longer than the catalog's selection" in (status.message or "")
    assert next(counter) < 10  # (54 + 5) / 25: a few pages, not the stream's end


def test_values_the_database_cannot_hold_are_skipped_and_said(connected: FakePim) -> None:
    selected = sorted(selected_uuids(connected))
    items = [
        {"uuid": selected[0], "title": "half an emoji \ud83d"},  # a lone surrogate
        {"uuid": selected[1], "title": "x" * 200_000},  # over the size cap
        {"uuid": selected[2], "title": "fine"},
        {"uuid": selected[2], "title": "fine, twice in the page"},
        {"uuid": "x" * 70, "title": "a uuid longer than its column"},
    ]
    raw = json.dumps({"_links": {}, "_embedded": {"items": items}}).encode()
    connected.answer("GET", mapped_path(connected), raw=raw)
    assert run_sync(connected)[-1] == "finished"
    copy = copy_of(connected)
    assert copy[selected[0]]["title"] == "half an emoji \ud83d"  # stored escaped, read back
    assert selected[1] not in copy and copy[selected[2]]["title"] == "fine, twice in the page"
    status = sync_store().status(connected.url)
    assert status and "over 100 KB" in (status.message or "")


def test_an_unexpected_error_ends_the_run_and_the_next_trigger_starts(
    connected: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database refused the write")

    monkeypatch.setattr(SyncStore, "save_products", broken)
    assert run_sync(connected)[-1] == "stopped"
    status = sync_store().status(connected.url)
    assert status and status.state == "stopped" and "RuntimeError" in (status.message or "")
    monkeypatch.undo()
    assert run_sync(connected)[-1] == "finished" and len(copy_of(connected)) == 54


def test_a_long_retry_after_pauses_the_run_instead_of_holding_the_step(
    connected: FakePim,
) -> None:
    connected.state.inject("GET", uuids_path(connected), 429, headers={"Retry-After": "300"})
    run_id = sync_store().request(
        connected.url, str(catalogs_current.store().catalog_id(connected.url)), full=False
    )
    assert run_id
    result = step(sync_store(), current.app_api(connected.url), connected.url, run_id)
    assert (result.outcome, result.delay) == ("more", 90.0)  # within Redis's 120 s
    assert sync_store().to_requeue() == []  # the sweep leaves the paused run alone
    assert play(connected.url, run_id, result.token)[-1] == "finished"


def test_the_next_run_asks_for_changes_with_a_margin_for_the_pims_clock(
    connected: FakePim,
) -> None:
    run_sync(connected)
    status = sync_store().status(connected.url)
    assert status and status.last_finished_at
    run_sync(connected)
    sent = mapped_calls(connected)[-1].query["updated_after"][0]
    since = datetime.fromisoformat(sent)
    assert since <= status.last_finished_at - timedelta(minutes=9)  # a PIM 2 minutes behind


def test_a_copy_whose_catalog_was_disabled_or_app_revoked_says_so(
    connected: FakePim, app: Flask
) -> None:
    run_sync(connected)
    the_catalog(connected).enabled = False  # disabled in the PIM
    assert run_sync(connected)[-1] == "stopped"
    browser = app.test_client()
    PimUser(browser, connected).connect()
    html = browser.get("/products").get_data(as_text=True)
    assert 'id="stale"' in html and "The catalog is disabled" in html
    assert html.count("<tr>") == 26  # the copy as it was, with its header row
    connected.app.test_client().post("/apps/revoke")  # the App disconnected in the PIM
    browser.get("/")  # the page's first call meets the 401
    answer = browser.get("/products")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert "no longer accepts this App" in browser.get("/").get_data(as_text=True)


def test_a_uuid_listed_twice_keeps_the_next_run_incremental(connected: FakePim) -> None:
    run_sync(connected)
    listed = sorted(selected_uuids(connected))
    page = {"_links": {}, "_embedded": {"items": listed + listed[:1]}}  # one uuid twice
    connected.state.inject("GET", uuids_path(connected), 200, body=page)
    before = len(mapped_calls(connected))
    assert run_sync(connected)[-1] == "finished"
    (incremental,) = mapped_calls(connected)[before:]  # no full re-read for a miscount
    assert "updated_after" in incremental.query
    assert sync_store().status(connected.url).total == 54  # type: ignore[union-attr]


def test_beat_on_a_fresh_checkout_makes_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = tmp_path / "checkout" / "instance"  # nothing made it yet
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(fresh))
    app = create_app(app_config(tmp_path))
    schedule = app.extensions["celery"].conf.beat_schedule_filename
    assert fresh.is_dir() and schedule.startswith(str(fresh))


# -- the products page for people: count, search, previous and next, one product ---------------


def priced(pim: FakePim) -> None:
    """The PIM user maps titles, SKUs, images and prices in US dollars."""
    enable(
        pim,
        **{"source-sku": "sku", "source-main_image": "image", "source-price": "price"},
        **{"currency-price": "USD"},
    )


def synced_with_prices(pim: FakePim, app: Flask) -> FlaskClient:
    """The catalog mapped with prices and synced; a browser signed in to the App."""
    priced(pim)
    run_sync(pim)
    browser = app.test_client()
    PimUser(browser, pim).connect()
    return browser


def test_the_products_page_counts_searches_and_pages_both_ways(
    connected: FakePim, app: Flask
) -> None:
    browser = synced_with_prices(connected, app)
    html = browser.get("/products").get_data(as_text=True)
    assert 'id="total">54 products<' in html and "USD" in html
    assert re.search(r"<td class=\"price\">\d+\.50 USD</td>", html)  # with its currency

    # next twice, then previous: the same pages back, in the same order
    first = re.findall(r'class="product-link" href="/products/([0-9a-f-]+)"', html)
    following = re.search(r'id="next-page" href="([^"]+)"', html)
    assert following and len(first) == 25
    second_html = browser.get(following.group(1).replace("&amp;", "&")).get_data(as_text=True)
    second = re.findall(r'class="product-link" href="/products/([0-9a-f-]+)"', second_html)
    back = re.search(r'id="previous-page" href="([^"]+)"', second_html)
    assert back and set(second).isdisjoint(first)
    again = browser.get(back.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'class="product-link" href="/products/([0-9a-f-]+)"', again) == first
    assert 'id="previous-page"' not in again  # the first page has none

    # search: titles and SKUs, any case, from the copy (no PIM call)
    calls = len(connected.requests)
    found = browser.get("/products", query_string={"q": "sku-0000"}).get_data(as_text=True)
    titles = re.findall(r'class="product-link" href="/products/[0-9a-f-]+">([^<]+)<', found)
    assert 0 < len(titles) < 54 and 'id="matched"' in found
    assert len(connected.requests) == calls
    none = browser.get("/products", query_string={"q": "%_nothing_%"}).get_data(as_text=True)
    assert "No product&#39;s title or SKU holds this text." in none


def test_a_products_page_shows_every_value_its_image_and_a_link_to_the_pim(
    connected: FakePim, app: Flask
) -> None:
    browser = synced_with_prices(connected, app)
    uuid = sorted(copy_of(connected))[0]
    html = browser.get(f"/products/{uuid}").get_data(as_text=True)
    stored = copy_of(connected)[uuid]
    assert f'id="product-title">{stored["title"]}<' in html
    assert 'class="large"' in html and f"{connected.url}/#/enrich/product/{uuid}" in html
    assert f"{stored['price']['amount']:,.2f} USD" in html
    assert "into the App's copy" in html  # when it was read
    missing = browser.get("/products/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert "not in the App&#39;s catalog" in missing.get_data(as_text=True)


def test_the_connected_page_previews_with_thumbnails_and_the_total(
    connected: FakePim, app: Flask
) -> None:
    browser = synced_with_prices(connected, app)
    html = browser.get("/").get_data(as_text=True)
    assert html.count('width="40" height="40"') == 5 and "All 54 products" in html


def test_a_changed_product_schema_is_pushed_and_everything_read_again(
    connected: FakePim, app: Flask
) -> None:
    run_sync(connected)
    browser = app.test_client()
    PimUser(browser, connected).connect()
    puts = [r for r in connected.requests if r.method == "PUT"]
    # the copier adds a field and restarts: the App reads the edited file at start
    edited = json.loads(json.dumps(app.extensions["catalogs.product_schema"]))
    edited["properties"]["weight"] = {"type": "number", "title": "Weight"}
    use_schema(app, edited)
    html = browser.get("/").get_data(as_text=True)
    assert "product fields changed" in html  # said once, where the user looks
    pushed = [r for r in connected.requests if r.method == "PUT"][len(puts) :]
    assert len(pushed) == 1 and "weight" in json.loads(pushed[0].body)["properties"]
    status = sync_store().status(connected.url)
    assert status and status.state == "queued" and status.full  # everything read again
    browser.get("/")
    assert len([r for r in connected.requests if r.method == "PUT"]) == len(puts) + 1


def test_the_sync_names_the_worker_only_when_none_takes_the_run(connected: FakePim) -> None:
    run_id = sync_store().request(
        connected.url, str(catalogs_current.store().catalog_id(connected.url)), full=False
    )
    assert run_id and "celery" not in describe(sync_store().status(connected.url))
    with current.database().engine.begin() as db:
        moment = datetime.now(UTC) - timedelta(seconds=30)
        db.execute(update(SyncRow).values(queued_at=moment))
    assert "celery -A app.sync.make_celery worker" in describe(sync_store().status(connected.url))


def test_an_incremental_sync_that_found_nothing_says_the_copy_is_up_to_date(
    connected: FakePim,
) -> None:
    run_sync(connected)
    assert "54 products read, 0 removed; the copy holds 54" in describe(
        sync_store().status(connected.url)
    )
    run_sync(connected)  # nothing changed in the PIM
    assert describe(sync_store().status(connected.url)).startswith("Up to date: 54 products")


def test_a_reconnection_with_a_new_catalog_shows_no_old_run_and_removes_nothing_of_it(
    connected: FakePim, app: Flask
) -> None:
    run_sync(connected)
    connected.app.test_client().post("/apps/revoke")  # its catalogs go with the App (§2.6)
    browser = app.test_client()
    PimUser(browser, connected).connect()  # a new catalog, disabled
    home = browser.get("/").get_data(as_text=True)
    assert 'id="catalog-state">Disabled' in home
    assert "Last sync" not in home and 'id="sync-now"' not in home  # nothing of the old one
    enable(connected)
    browser.get("/")  # seen enabled: its first sync is queued
    run_queued_jobs(connected)
    text = describe(sync_store().status(connected.url))
    assert "54 products read, 0 removed" in text  # the old catalog's copy is not "removed"


def test_a_page_that_queues_a_job_as_a_worker_declares_the_queue_still_loads(
    connected: FakePim, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from app.sync import tasks

    sent: list[Any] = []
    real = sync_current.celery().send_task

    def racing(*args: Any, **kwargs: Any) -> Any:
        sent.append(args)
        if len(sent) == 1:  # kombu's SQL transport, a worker declaring the queue meanwhile
            raise IntegrityError("INSERT INTO kombu_queue", {}, Exception("UNIQUE"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sync_current.celery(), "send_task", racing)
    assert tasks.queue_sync(connected.url)
    assert len(sent) == 2 and queued_jobs()  # tried again, and queued
