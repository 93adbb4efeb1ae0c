"""Catalogs for Apps: the App's catalog made sure of after each connection, shown and read; the
local PIM's catalog endpoints as the specification says (../shared/akeneo-catalogs.md)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.catalogs import load_schema
from tests.pims import FakePim, PimUser, app_config, make_pim, plug, run_together

from .pim_catalogs import catalogs_of, configure, enable_with_titles, the_catalog

CATALOGS = "/api/rest/v1/catalogs"


def page(response: Any) -> str:
    return response.get_data(as_text=True)  # type: ignore[no-any-return]


# -- made sure of after every connection ---------------------------------------------------


def test_connecting_creates_the_catalog_once_and_pushes_the_schema(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    catalog = the_catalog(pim)
    assert (catalog.name, catalog.enabled) == ("Flask Akeneo App", False)
    assert catalog.schema == load_schema()
    (put,) = [r for r in pim.requests if r.method == "PUT"]
    assert json.loads(put.body) == load_schema()
    store = client.application.extensions["catalogs.store"]
    assert store.catalog_id(pim.url) == catalog.id

    user.connect()  # Open app again: same catalog, schema pushed again, none created
    assert [c.id for c in catalogs_of(pim).all()] == [catalog.id]
    assert len([r for r in pim.requests if r.method == "POST" and r.path == CATALOGS]) == 1


def test_a_disconnected_then_reconnected_app_gets_a_new_catalog(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    first = the_catalog(pim).id
    pim.state.revoke()
    catalogs_of(pim).delete_all()  # the PIM deletes the App's catalogs with its user (§2.6)
    user.connect()
    second = the_catalog(pim).id
    assert second != first
    assert client.application.extensions["catalogs.store"].catalog_id(pim.url) == second


def test_a_catalog_found_by_its_exact_name_is_reused(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    for name in ("Flask Akeneo App (old)", "Flask Akeneo App"):
        catalogs_of(pim).create(name)
    existing = [c for c in catalogs_of(pim).all() if c.name == "Flask Akeneo App"][0]
    user.connect()
    assert len(catalogs_of(pim).all()) == 2
    assert client.application.extensions["catalogs.store"].catalog_id(pim.url) == existing.id


def test_without_the_catalog_scopes_the_page_says_to_connect_again(
    tmp_path: Path, pim: FakePim
) -> None:
    app = create_app(app_config(tmp_path, AKENEO_SCOPES="read_channel_settings openid"))
    browser = app.test_client()
    assert PimUser(browser, pim).connect().status_code == 302  # connected all the same
    home = browser.get("/")
    assert home.status_code == 200
    assert "connect it again to grant the catalog scopes" in page(home)
    assert "ecommerce" in page(home)  # the rest of the page works


def test_the_catalog_limit_is_explained(wire: responses.RequestsMock, tmp_path: Path) -> None:
    full = plug(wire, make_pim("http://pim-full.test", CATALOG_LIMIT="0"))
    browser = create_app(app_config(tmp_path)).test_client()
    PimUser(browser, full).connect()
    home = page(browser.get("/"))
    assert "create the App&#39;s catalog: You can create up to 0 catalogs" in home
    assert "delete the ones you no longer use" in home


def test_a_pim_down_at_connection_time_is_retried_on_the_next_visit(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    pim.state.inject("GET", CATALOGS, 503, times=10)
    assert user.connect().status_code == 302
    assert catalogs_of(pim).all() == []
    assert "tries again on your next visit" in page(client.get("/"))
    while pim.state.take_fault("GET", CATALOGS):  # the PIM is back
        pass
    home = page(client.get("/"))
    assert 'id="catalog-state">Disabled' in home
    assert len(catalogs_of(pim).all()) == 1


# -- the connected page and the products page -----------------------------------------------


def test_a_new_catalog_shows_as_disabled_with_the_configure_link(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    home = page(client.get("/"))
    catalog = the_catalog(pim)
    assert 'id="catalog-state">Disabled' in home
    assert f'href="{pim.url}/connect/apps/v1/catalogs/{catalog.id}"' in home
    assert "The catalog is disabled." in home
    assert 'id="preview"' not in home  # never an empty list that looks like "no products"


def test_an_enabled_and_mapped_catalog_shows_its_products(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    enable_with_titles(pim, family="mugs")
    home = page(client.get("/"))
    assert 'id="catalog-state">Enabled' in home
    titles = re.findall(r'<span class="title">([^<]+)</span>', home)
    assert len(titles) == 5 and all(" mug " in title for title in titles)


def test_a_catalog_without_a_schema_is_explained(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    enable_with_titles(pim)
    catalogs_of(pim).set_schema(the_catalog(pim), None)
    home = page(client.get("/"))
    assert "no product mapping schema yet" in home


def test_a_catalog_that_selects_nothing_says_so(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    enable_with_titles(pim)
    the_catalog(pim).criteria = [{"field": "family", "operator": "IN", "value": ["none"]}]
    assert "selects no product" in page(client.get("/"))


def test_the_products_page_follows_the_cursor_to_the_end(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    enable_with_titles(pim)
    seen: list[str] = []
    url = "/products"
    for _ in range(10):
        html = page(client.get(url))
        seen += re.findall(r'class="product-link" href="/products/([0-9a-f-]{36})"', html)
        following = re.search(r'id="next-page" href="([^"]+)"', html)
        if not following:
            break
        url = following.group(1).replace("&amp;", "&")
        assert "First page" in page(client.get(url))
    products = pim.app.extensions["devpim_catalog"]
    expected = [u for _, u in products.keys("uuid") if products.get(u)["enabled"]]
    assert seen == expected and len(seen) == 54  # 60 products, 6 disabled; 3 pages of 25
    calls = [r for r in pim.requests if r.path.endswith("/mapped-products")]
    assert any("search_after" in r.query for r in calls)


def test_the_products_page_shows_images_through_the_app(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    enable_with_titles(pim)
    html = page(client.get("/products"))
    image = re.search(r'<img src="(/media\?url=[^"]+)"', html)
    assert image is not None
    answer = client.get(image.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert answer.data.startswith(b"\x89PNG")
    assert answer.headers["Cache-Control"] == "private, max-age=3600"
    assert answer.headers["Vary"] == "Cookie"  # never served from a cache to another session
    media_calls = [r for r in pim.requests if r.path.startswith("/api/rest/v1/media-files/")]
    assert media_calls[0].headers["Authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.test/api/rest/v1/media-files/a/download",
        "http://pim-a.test/api/rest/v1/products-uuid",
        "http://pim-a.test/api/rest/v1/media-files/../../catalogs/download",
        # requests decodes %2e and %2f: the path is checked as it would be sent
        "http://pim-a.test/api/rest/v1/media-files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/internal/download",
        "http://pim-a.test/api/rest/v1/media-files/%2E%2e/x/download",
        "http://pim-a.test/api/rest/v1/media-files/a%2f..%2fb/download",
        "http://pim-a.test/api/rest/v1/media-files/a/./download",
        "http://pim-a.test/api/rest/v1/media-files//download",
        "http://pim-a.test/api/rest/v1/media-files/a\\b/download",
        "http://pim-a.test/api/rest/v1/media-files/a/download?x=1",
        "http://pim-a.test/api/rest/v1/media-files/a/download#x",
        "http://pim-a.test.evil.test/api/rest/v1/media-files/a/download",
    ],
)
def test_the_media_route_fetches_the_connected_pims_media_files_only(
    user: PimUser, client: FlaskClient, pim: FakePim, url: str
) -> None:
    user.connect()
    before = len(pim.requests)
    assert client.get("/media", query_string={"url": url}).status_code == 404
    assert len(pim.requests) == before  # nothing was fetched


def test_the_media_route_needs_a_signed_in_browser(client: FlaskClient) -> None:
    url = "http://pim-a.test/api/rest/v1/media-files/a/download"
    assert client.get("/media", query_string={"url": url}).status_code == 401


# -- the CLI -------------------------------------------------------------------------------


def test_the_cli_lists_catalogs_and_prints_mapped_products(
    app: Flask, user: PimUser, pim: FakePim
) -> None:
    def run(*args: str) -> tuple[int, str]:
        result = app.test_cli_runner().invoke(args=["akeneo", *args, "--pim", pim.url])
        return result.exit_code, result.output

    user.connect()
    catalog = the_catalog(pim)
    assert run("catalogs") == (0, f"{catalog.id}  disabled  Flask Akeneo App\n")
    code, output = run("products")
    assert code == 1 and "The catalog is disabled" in output
    enable_with_titles(pim)
    code, output = run("products", "--limit", "3")
    assert code == 0 and len(output.splitlines()) == 3
    code, output = run("products", "--all", "--limit", "20")
    products = [json.loads(line) for line in output.splitlines()]
    assert code == 0 and len({p["uuid"] for p in products}) == 54
    assert all(set(p) <= set(load_schema()["properties"]) for p in products)


# -- the local PIM as the specification says -----------------------------------------------


@pytest.fixture
def api_of(pim: FakePim) -> Any:
    """Call the local PIM's API with a token of the given scopes."""

    def call(scopes: str, method: str, path: str, **kwargs: Any) -> Any:
        pim.state._grant(frozenset(scopes.split()))  # noqa: SLF001 - a token, as if consented
        headers = {"Authorization": f"Bearer {pim.state.app.token}"}
        return pim.app.test_client().open(path, method=method, headers=headers, **kwargs)

    return call


def test_scopes_are_checked_before_existence(api_of: Any) -> None:
    unknown = f"{CATALOGS}/00000000-0000-4000-8000-000000000000"
    assert api_of("read_products", "GET", unknown).status_code == 403
    answer = api_of("read_catalogs", "GET", f"{unknown}/mapped-products")
    assert answer.status_code == 403
    assert answer.json["message"] == "Access forbidden. You are not allowed to access products."
    answer = api_of("read_catalogs read_products", "GET", f"{unknown}/mapped-products")
    assert answer.status_code == 404
    assert answer.json["message"] == (
        'Catalog "00000000-0000-4000-8000-000000000000" does not exist or you can\'t access it.'
    )


def test_mapped_products_keep_schema_order_and_leave_empty_targets_out(
    api_of: Any, pim: FakePim
) -> None:
    made = api_of("write_catalogs", "POST", CATALOGS, json={"name": "c"}).json
    schema = load_schema()
    assert (
        api_of(
            "write_catalogs", "PUT", f"{CATALOGS}/{made['id']}/mapping-schemas/product", json=schema
        ).status_code
        == 204
    )
    catalog = catalogs_of(pim).get(made["id"])
    assert catalog is not None
    catalog.enabled = True
    catalog.mapping["title"] = {"source": "name", "locale": "fr_FR", "scope": None}
    catalog.mapping["price"] = {"source": "price", "locale": None, "scope": None}
    answer = api_of(
        "read_catalogs read_products", "GET", f"{CATALOGS}/{made['id']}/mapped-products?limit=2"
    )
    items = answer.json["_embedded"]["items"]
    assert [list(item) for item in items] == [["uuid", "title", "price"]] * 2
    assert f"search_after={items[1]['uuid']}" in answer.json["_links"]["next"]["href"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("updated_after=2026-01-01", "ISO 8601 format is required."),
        ("limit=101", "This value should be between 1 and 100."),
        ("search_after=nope", "This is not a valid UUID."),
    ],
)
def test_product_queries_are_validated_before_the_disabled_answer(
    api_of: Any, query: str, message: str
) -> None:
    made = api_of("write_catalogs", "POST", CATALOGS, json={"name": "c"}).json
    answer = api_of(
        "read_catalogs read_products", "GET", f"{CATALOGS}/{made['id']}/mapped-products?{query}"
    )
    assert answer.status_code == 422 and answer.json["errors"][0]["message"] == message


def test_a_schema_with_an_unknown_meta_schema_is_refused(api_of: Any) -> None:
    made = api_of("write_catalogs", "POST", CATALOGS, json={"name": "c"}).json
    schema = {**load_schema(), "$schema": "https://example.com/mine"}
    answer = api_of(
        "write_catalogs", "PUT", f"{CATALOGS}/{made['id']}/mapping-schemas/product", json=schema
    )
    assert answer.status_code == 422
    assert answer.json["errors"] == [
        {
            "property": "product_mapping_schema",
            "message": "You must provide a valid $schema reference.",
        }
    ]


def test_connections_at_once_end_with_one_catalog(client: FlaskClient, pim: FakePim) -> None:
    callbacks = []
    for _ in range(6):
        browser = client.application.test_client()
        person = PimUser(browser, pim)
        callbacks.append((browser, person.consent(person.activate())))
    barrier = threading.Barrier(len(callbacks))
    statuses: list[int] = []
    # every connection lists the catalogs before any creates one: each creates its own
    pim.state.inject("GET", CATALOGS, None, delay=0.3, times=len(callbacks))

    def arrive(browser: FlaskClient, callback: str) -> None:
        barrier.wait()
        statuses.append(PimUser(browser, pim).come_back(callback).status_code)

    run_together(*[lambda b=b, c=c: arrive(b, c) for b, c in callbacks])
    assert statuses == [302] * 6
    (catalog,) = catalogs_of(pim).all()
    assert client.application.extensions["catalogs.store"].catalog_id(pim.url) == catalog.id


def test_a_selection_by_category_and_one_product_of_it(
    api_of: Any, pim: FakePim, user: PimUser
) -> None:
    user.connect()
    configure(pim, catalog_enabled="on", category="sale")
    catalog = the_catalog(pim)
    uuids = api_of(
        "read_catalogs read_products", "GET", f"{CATALOGS}/{catalog.id}/product-uuids?limit=1000"
    ).json["_embedded"]["items"]
    assert len(uuids) == 12  # every fifth of the 60 products
    one = api_of(
        "read_catalogs read_products", "GET", f"{CATALOGS}/{catalog.id}/products/{uuids[0]}"
    )
    assert one.status_code == 200 and "sale" in one.json["categories"]
    assert set(one.json) == {
        "uuid",
        "enabled",
        "family",
        "categories",
        "groups",
        "parent",
        "values",
        "associations",
        "quantified_associations",
        "created",
        "updated",
    }
    other = [u for _, u in pim.app.extensions["devpim_catalog"].keys("uuid") if u not in uuids][0]
    missing = api_of(
        "read_catalogs read_products", "GET", f"{CATALOGS}/{catalog.id}/products/{other}"
    )
    assert missing.status_code == 404 and missing.json["message"].startswith("Either catalog")


def test_a_duplicated_catalog_is_a_disabled_copy(api_of: Any, pim: FakePim, user: PimUser) -> None:
    user.connect()
    configure(pim, catalog_enabled="on", family="mugs")
    original = the_catalog(pim)
    copy = api_of(
        "write_catalogs", "POST", f"{CATALOGS}/{original.id}/duplicate", json={"name": "Copy"}
    )
    assert copy.status_code == 201
    assert (copy.json["name"], copy.json["enabled"]) == ("Copy", False)
    duplicated = catalogs_of(pim).get(copy.json["id"])
    assert duplicated is not None and duplicated.criteria == original.criteria


def test_a_refused_channel_list_leaves_the_catalog_shown(tmp_path: Path, pim: FakePim) -> None:
    scopes = "read_catalogs write_catalogs read_products openid"  # no read_channel_settings
    browser = create_app(app_config(tmp_path, AKENEO_SCOPES=scopes)).test_client()
    PimUser(browser, pim).connect()
    home = page(browser.get("/"))
    assert "needs the read_channel_settings scope" in home
    assert 'id="catalog-state">Disabled' in home


# -- text and ids a PIM sends that the App cannot use as they are ------------------------------


def test_a_lone_surrogate_in_a_pims_text_never_breaks_a_page(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    user.connect()
    enable_with_titles(pim)
    the_catalog(pim).name = "Flask Akeneo App"  # found by its name: the App's own
    mapped = f"{CATALOGS}/{the_catalog(pim).id}/mapped-products"
    items = [{"uuid": "00000000-0000-4000-8000-000000000001", "title": "half \ud83d an emoji"}]
    pim.answer(
        "GET", mapped, raw=json.dumps({"_links": {}, "_embedded": {"items": items}}).encode()
    )
    home = client.get("/")
    assert home.status_code == 200 and "half ? an emoji" in page(home)
    products = client.get("/products")
    assert products.status_code == 200 and "half ? an emoji" in page(products)


def test_a_catalog_whose_id_is_no_uuid_is_not_taken_for_the_apps(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    odd = {"id": "x" * 70, "name": "Flask Akeneo App", "enabled": True}
    real = {"_links": {}, "_embedded": {"items": [odd]}}
    pim.answer("GET", CATALOGS, body=real)
    user.connect()  # the odd one is skipped: the App creates its own
    assert [r for r in pim.requests if r.method == "POST" and r.path == CATALOGS]
    assert client.get("/").status_code == 200


def test_the_claim_holder_never_outlives_its_claim(
    user: PimUser, client: FlaskClient, pim: FakePim, waits: list[float]
) -> None:
    # the PIM asks the creating request to wait 40 s: longer than its claim lives (30 s)
    pim.state.inject("POST", CATALOGS, 429, headers={"Retry-After": "40"})
    user.connect()
    assert waits == [] and catalogs_of(pim).all() == []  # it gave up in time, never waited
    client.get("/")  # the claim was released: the next visit creates the catalog
    assert len(catalogs_of(pim).all()) == 1
