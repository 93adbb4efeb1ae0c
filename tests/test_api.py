"""The API client against a PIM holding a real catalog: big pages, writes, list upserts, media,
rate limits, transient faults and typed errors (issue: an API client for real catalogs)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from flask import Flask

from app import create_app, current
from app.api import COLLECTION_TYPE, PimApi, read_ahead
from app.errors import PimError, PimHttpError
from devpim.products import Catalog
from tests.pims import FakePim, PimUser, app_config, make_pim, plug

SCOPES = "read_products write_products delete_products read_channel_settings openid"
PRODUCTS = "/api/rest/v1/products-uuid"


@pytest.fixture
def big_pim(wire: responses.RequestsMock) -> FakePim:
    """A PIM with 300 products of about 14 KB: pages of 100 are 1.4 MB."""
    return plug(wire, make_pim("http://pim-big.test", PRODUCT_COUNT="300", MEDIA_BYTES="3000000"))


@pytest.fixture
def api(tmp_path: Path, big_pim: FakePim, waits: list[float]) -> Iterator[PimApi]:
    """The App connected to the big PIM with the product scopes; its API client (its retries
    wait on `waits`, not the clock)."""
    app = create_app(app_config(tmp_path, AKENEO_SCOPES=SCOPES))
    app.extensions["akeneo_client"].sleep = waits.append
    PimUser(app.test_client(), big_pim).connect()
    with app.app_context():
        yield current.app_api(big_pim.url)


def catalog_of(pim: FakePim) -> Catalog:
    return pim.app.extensions["devpim_catalog"]  # type: ignore[no-any-return]


def product_calls(pim: FakePim) -> list[Any]:
    return [r for r in pim.requests if r.path == PRODUCTS and r.method == "GET"]


# -- sizes -----------------------------------------------------------------------------------


def test_pages_over_a_megabyte_are_read_to_the_end(api: PimApi, big_pim: FakePim) -> None:
    products = list(api.items(PRODUCTS))
    assert len(products) == 300 and len({p["uuid"] for p in products}) == 300
    assert len(product_calls(big_pim)) == 3  # 100 a page, each about 1.4 MB


def test_the_api_cap_is_configurable_and_the_app_endpoints_keep_a_small_one(
    tmp_path: Path, big_pim: FakePim
) -> None:
    app = create_app(app_config(tmp_path, AKENEO_SCOPES=SCOPES, AKENEO_MAX_RESPONSE_MB="1"))
    PimUser(app.test_client(), big_pim).connect()
    with app.app_context(), pytest.raises(PimError, match="too large"):
        list(current.app_api(big_pim.url).items(PRODUCTS))
    assert app.extensions["akeneo_client"].max_response_bytes == 1024 * 1024


def test_a_media_file_streams_to_a_file(api: PimApi, tmp_path: Path) -> None:
    product = api.get(f"{PRODUCTS}/{Catalog.seed_uuid(7)}")
    link = product["values"]["image"][0]["_links"]["download"]["href"]
    path = link.removeprefix(api.pim_url)
    with (tmp_path / "image.png").open("wb") as file:
        size = api.download(path, file)
    assert size == 3_000_000 == (tmp_path / "image.png").stat().st_size
    buffer = io.BytesIO()
    assert api.download(path, buffer) == 3_000_000
    assert buffer.getvalue() == (tmp_path / "image.png").read_bytes()


# -- writes ----------------------------------------------------------------------------------


def test_a_create_answers_201_with_the_new_uuid(api: PimApi, big_pim: FakePim) -> None:
    created = api.write("POST", PRODUCTS, {"identifier": "new-one", "family": "mugs"})
    assert created.status == 201
    assert created.location == f"{big_pim.url}{PRODUCTS}/{created.code}"
    assert catalog_of(big_pim).get(str(created.code))["identifier"] == "new-one"  # type: ignore[index]


def test_an_update_and_a_delete_answer_204(api: PimApi, big_pim: FakePim) -> None:
    uuid = Catalog.seed_uuid(3)
    updated = api.write("PATCH", f"{PRODUCTS}/{uuid}", {"family": "lamps"})
    assert (updated.status, updated.code) == (204, uuid)
    assert catalog_of(big_pim).get(uuid)["family"] == "lamps"  # type: ignore[index]
    assert api.write("DELETE", f"{PRODUCTS}/{uuid}").status == 204
    assert catalog_of(big_pim).get(uuid) is None


def test_a_422_carries_the_pims_status_message_and_field_errors(api: PimApi) -> None:
    too_long = {"values": {"name": [{"locale": "en_US", "scope": None, "data": "x" * 300}]}}
    with pytest.raises(PimHttpError) as refused:
        api.write("PATCH", f"{PRODUCTS}/{Catalog.seed_uuid(1)}", too_long)
    error = refused.value
    assert (error.pim_status, error.pim_message, error.status) == (422, "Validation failed.", 502)
    assert error.errors[0]["attribute_code"] == "name" and error.errors[0]["locale"] == "en_US"
    assert error.retry is False  # connecting again cures no invalid data
    assert (
        error.message
        == (
            f"The PIM refused the API call {PRODUCTS}/{Catalog.seed_uuid(1)} (HTTP 422): "
            "Validation failed.."[:-1]
        )
    )


def test_a_404_is_told_apart_from_a_422(api: PimApi) -> None:
    with pytest.raises(PimHttpError) as missing:
        api.get(f"{PRODUCTS}/00000000-0000-0000-0000-000000000000")
    assert missing.value.pim_status == 404
    assert "no such resource or endpoint" in missing.value.message


# -- list upserts ----------------------------------------------------------------------------


def test_a_list_upsert_goes_100_a_request_and_answers_one_result_per_item(
    api: PimApi, big_pim: FakePim
) -> None:
    items: list[dict[str, Any]] = [
        {"uuid": Catalog.seed_uuid(n), "family": "mugs"} for n in range(120)
    ]
    items += [{"uuid": f"00000000-0000-4000-8000-{n:012d}", "family": "lamps"} for n in range(125)]
    items[5] = {"uuid": Catalog.seed_uuid(5), "family": "no-such-family"}  # refused
    items[150] = {"family": "mugs"}  # no uuid: refused
    results = list(api.upsert_list(PRODUCTS, items))

    sent = [r for r in big_pim.requests if r.path == PRODUCTS and r.method == "PATCH"]
    assert [len(r.body.splitlines()) for r in sent] == [100, 100, 45]
    assert all(r.headers["Content-Type"] == COLLECTION_TYPE for r in sent)
    assert [r.line for r in results] == list(range(1, 246))
    assert [r.status for r in results].count(204) == 119
    assert [r.status for r in results].count(201) == 124
    assert (results[5].ok, results[5].status, results[5].identifier) == (
        False,
        422,
        Catalog.seed_uuid(5),
    )
    assert "family does not exist" in results[5].message
    assert (results[150].status, results[150].message) == (422, "Uuid is missing.")
    assert catalog_of(big_pim).get(Catalog.seed_uuid(6))["family"] == "mugs"  # type: ignore[index]


def test_a_list_upsert_answer_with_a_line_that_is_no_number_is_a_pim_error(
    api: PimApi, big_pim: FakePim
) -> None:
    answer = b'{"line": "one", "uuid": "x", "status_code": 204}\n'
    big_pim.answer(
        "PATCH", PRODUCTS, raw=answer, content_type="application/vnd.akeneo.collection+json"
    )
    with pytest.raises(PimError, match="numbers its lines wrong"):
        list(api.upsert_list(PRODUCTS, [{"uuid": "x"}]))


def test_a_list_upsert_refuses_batches_over_100(api: PimApi) -> None:
    with pytest.raises(ValueError, match="1 to 100"):
        list(api.upsert_list(PRODUCTS, [{"uuid": "x"}], batch=101))


# -- pagination ------------------------------------------------------------------------------


def test_search_after_reads_every_product_once(api: PimApi, big_pim: FakePim) -> None:
    products = list(api.items(PRODUCTS, search_after=True))
    assert len({p["uuid"] for p in products}) == 300
    calls = product_calls(big_pim)
    assert len(calls) == 3
    assert all(c.query["pagination_type"] == ["search_after"] for c in calls)
    assert "search_after" in calls[1].query


def test_a_read_can_resume_from_its_cursor_after_an_error(api: PimApi, big_pim: FakePim) -> None:
    listing = api.items(PRODUCTS, limit=50, search_after=True)
    reading = iter(listing)
    read = [next(reading) for _ in range(100)]  # pages 1 and 2
    big_pim.state.inject("GET", PRODUCTS, 404, body={"code": 404, "message": "gone"})
    with pytest.raises(PimHttpError):
        next(reading)  # page 3 fails
    assert listing.next_path is not None and "search_after=" in listing.next_path
    read.extend(api.resume(listing.next_path))  # from page 3, not from zero
    assert len(read) == 300 and len({p["uuid"] for p in read}) == 300
    assert len(product_calls(big_pim)) == 2 + 1 + 4  # pages 1-2, the failure, pages 3-6


# -- rate limits and transient faults ---------------------------------------------------------


def test_a_429_waits_its_retry_after_and_the_read_goes_on(
    api: PimApi, big_pim: FakePim, waits: list[float]
) -> None:
    listing = iter(api.items(PRODUCTS, limit=10))
    first = [next(listing) for _ in range(40)]  # pages 1 to 4
    big_pim.state.inject("GET", PRODUCTS, 429, headers={"Retry-After": "1"})
    rest = list(listing)
    assert waits == [1.0]
    assert len({p["uuid"] for p in first + rest}) == 300
    pages = [c.query.get("page", ["1"])[0] for c in product_calls(big_pim)]
    assert pages.count("5") == 2  # page 5 asked again, once, after the wait; nothing restarted


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_transient_server_error_is_retried_for_a_read(
    api: PimApi, big_pim: FakePim, status: int
) -> None:
    big_pim.state.inject("GET", PRODUCTS, status, body={"code": status, "message": "oops"})
    assert len(list(api.items(PRODUCTS))) == 300
    assert len(product_calls(big_pim)) == 4


def test_a_post_whose_outcome_is_unknown_is_never_sent_twice(api: PimApi, big_pim: FakePim) -> None:
    big_pim.state.inject("POST", PRODUCTS, 503, body={"code": 503, "message": "busy"})
    with pytest.raises(PimHttpError) as refused:
        api.write("POST", PRODUCTS, {"identifier": "x"})
    assert refused.value.pim_status == 503
    assert len([r for r in big_pim.requests if r.method == "POST" and r.path == PRODUCTS]) == 1


def test_a_429_on_a_post_is_retried_since_the_pim_did_nothing(
    api: PimApi, big_pim: FakePim
) -> None:
    big_pim.state.inject("POST", PRODUCTS, 429, headers={"Retry-After": "0"})
    assert api.write("POST", PRODUCTS, {"identifier": "y"}).status == 201


def test_a_dropped_connection_is_retried_for_an_upsert_only(api: PimApi, big_pim: FakePim) -> None:
    original = big_pim.handle
    drops = {"PATCH": 1, "POST": 1}

    def flaky(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if drops.get(request.method or "", 0) > 0:
            drops[request.method or ""] -= 1
            raise requests.ConnectionError("Connection aborted: RemoteDisconnected")
        return original(request)

    big_pim.handle = flaky  # type: ignore[method-assign]
    assert api.write("PATCH", f"{PRODUCTS}/{Catalog.seed_uuid(2)}", {"family": "mugs"}).status
    with pytest.raises(PimError, match="could not be reached"):
        api.write("POST", PRODUCTS, {"identifier": "z"})


def test_a_retry_after_beyond_the_deadline_ends_the_call_with_a_429(
    api: PimApi, big_pim: FakePim
) -> None:
    big_pim.state.inject("GET", PRODUCTS, 429, headers={"Retry-After": "30"})
    started = time.monotonic()
    with pytest.raises(PimHttpError) as limited:
        api.get(PRODUCTS, deadline=time.monotonic() + 2)
    assert time.monotonic() - started < 1  # no sleep that would end after the deadline
    assert (limited.value.pim_status, limited.value.retry_after) == (429, 30.0)


def test_at_most_four_calls_are_in_flight_per_pim(api: PimApi, big_pim: FakePim) -> None:
    original = big_pim.handle
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def counted(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.2)
        try:
            return original(request)
        finally:
            with lock:
                in_flight[0] -= 1

    big_pim.handle = counted  # type: ignore[method-assign]
    threads = [
        threading.Thread(target=api.get, args=(f"{PRODUCTS}/{Catalog.seed_uuid(n)}",))
        for n in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 4


def _app(tmp_path: Path, pim: FakePim) -> Flask:
    app = create_app(app_config(tmp_path, AKENEO_SCOPES=SCOPES))
    PimUser(app.test_client(), pim).connect()
    return app


def test_the_cli_prints_every_item_writes_and_upserts(tmp_path: Path, big_pim: FakePim) -> None:
    app = _app(tmp_path, big_pim)

    def run(*args: str) -> tuple[int, str]:
        result = app.test_cli_runner().invoke(args=["akeneo", "call", *args, "--pim", big_pim.url])
        return result.exit_code, result.output

    code, output = run(PRODUCTS, "--all")
    assert code == 0
    assert len({json.loads(line)["uuid"] for line in output.splitlines()}) == 300
    code, output = run(f"{PRODUCTS}?limit=100&with_count=true", "--all")  # a query and --all
    assert code == 0 and len(output.splitlines()) == 300
    asked = [c.query for c in product_calls(big_pim) if "with_count" in c.query]
    assert asked and asked[0]["limit"] == ["100"] and asked[0]["with_count"] == ["true"]

    code, output = run(PRODUCTS, "--method", "POST", "--data", '{"identifier": "cli"}')
    assert code == 0 and output.startswith(f"201 {big_pim.url}{PRODUCTS}/")

    items = tmp_path / "items.jsonl"
    items.write_text(
        json.dumps({"uuid": Catalog.seed_uuid(1), "family": "mugs"})
        + "\n"
        + json.dumps({"uuid": Catalog.seed_uuid(2), "family": "nope"})
        + "\n"
    )
    code, output = run(PRODUCTS, "--method", "PATCH", "--data", f"@{items}")
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [(r["line"], r["status_code"]) for r in lines] == [(1, 204), (2, 422)]
    assert code == 1 and "1 item(s) were refused" in output

    code, output = run(f"{PRODUCTS}/{Catalog.seed_uuid(1)}", "--method", "DELETE")
    assert (code, output) == (0, "204\n")


def test_read_ahead_asks_for_the_next_page_while_the_caller_works_on_this_one() -> None:
    from flask import current_app

    asked: list[int] = []
    app = Flask("read-ahead")

    def pages() -> Iterator[int]:
        for number in range(3):
            asked.append(number)
            assert current_app.name == "read-ahead"  # the caller's app context, in the thread
            yield number

    with app.app_context():
        reader = read_ahead(pages())
        assert next(reader) == 0
        time.sleep(0.05)
        assert asked == [0, 1]  # page 1 was asked for while the caller held page 0
        assert list(reader) == [1, 2]


def test_read_ahead_raises_the_pages_error_to_the_caller() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise PimError("The PIM's next page points to another host.")

    reader = read_ahead(pages())
    assert next(reader) == 1
    with pytest.raises(PimError, match="another host"):
        next(reader)
