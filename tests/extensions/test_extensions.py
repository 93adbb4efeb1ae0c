"""The App inside the PIM: its extensions placed once, the action's signature and age, the
product tab framed by the PIM alone and answering a token once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import current, tasks
from app.sync import current as sync_current
from app.sync import tasks as sync_tasks
from devpim.extensions import UiExtensions, token_for
from devpim.products import Catalog
from tests.pims import FakePim, PimUser

from ..sync.conftest import enable
from ..sync.helpers import copy_of, drop_queued, products_of, queued_jobs, run_sync
from .conftest import run_register_jobs


def by_name(ui: UiExtensions) -> dict[str, Any]:
    return {e.name: e for e in ui.items.values()}


def path_of(extension: Any) -> str:
    return str(extension.configuration["url"]).removeprefix("http://localhost")


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def action_body(*uuids: str, timestamp: float | None = None) -> bytes:
    data = {"productUuids": list(uuids), "productModelCodes": []}
    stamp = int(time.time() if timestamp is None else timestamp)
    return json.dumps({"data": data, "context": {}, "user": {}, "timestamp": stamp}).encode()


def rename(pim: FakePim, product_uuid: str, title: str) -> None:
    values = {"name": [{"locale": "en_US", "scope": None, "data": title}]}
    products_of(pim).upsert(product_uuid, {"values": values}, via="ui")


def apply_changes() -> None:
    for (pim_url,) in queued_jobs(sync_tasks.APPLY):
        sync_tasks.apply_changes(pim_url)
    drop_queued()


def test_connecting_places_the_apps_extensions_once(
    placed: FakePim, ui: UiExtensions, client: FlaskClient
) -> None:
    found = by_name(ui)
    assert {(e.type, e.position) for e in found.values()} == {
        ("action", "pim.product-grid.action-bar"),
        ("action", "pim.product.header"),
        ("iframe", "pim.product.tab"),
    }
    grid = found["flask_app_sync_selection"]
    assert grid.configuration["default_label"] == "Sync with Flask Akeneo App"
    assert path_of(grid).startswith("/extensions/") and path_of(grid).endswith("/action")
    secrets = {e.configuration["secret"] for e in found.values()}
    assert len(secrets) == 3 and all(len(s) >= 32 for s in secrets)  # one each

    PimUser(client, placed).connect()  # connected again: found, nothing new, nothing changed
    assert run_register_jobs() == [0]
    assert by_name(ui) == found


def test_the_grid_action_reads_the_ticked_products_again(placed: FakePim, ui: UiExtensions) -> None:
    run_sync(placed)
    one, two = Catalog.seed_uuid(4), Catalog.seed_uuid(7)
    rename(placed, one, "Renamed, then synced from the grid")  # no event: only the action
    grid = by_name(ui)["flask_app_sync_selection"]
    pim_side = placed.app.test_client()
    pim_side.post(f"/products/actions/{grid.uuid}", data={"uuid": [one, two]})
    assert ui.last_action == {
        "status": 200,
        "message": "Queued 2 products: the App reads them again.",
    }
    apply_changes()
    assert copy_of(placed)[one]["title"] == "Renamed, then synced from the grid"


def test_an_action_not_signed_right_or_too_old_is_refused(
    placed: FakePim, ui: UiExtensions, client: FlaskClient
) -> None:
    grid = by_name(ui)["flask_app_sync_selection"]
    secret, path = grid.configuration["secret"], path_of(grid)
    body = action_body(Catalog.seed_uuid(4))

    def post(data: bytes, signature: str | None) -> Any:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["signature"] = signature
        return client.post(path, data=data, headers=headers)

    assert post(body, None).status_code == 401
    assert post(body, sign("another extension's secret, 32 chars", body)).status_code == 401
    other = by_name(ui)["flask_app_sync_product"].configuration["secret"]
    assert post(body, sign(other, body)).status_code == 401  # another extension's secret
    old = action_body(Catalog.seed_uuid(4), timestamp=time.time() - 400)
    replay = post(old, sign(secret, old))
    assert replay.status_code == 401 and "5 minutes" in replay.get_json()["message"]
    for stamp in (b"NaN", b"Infinity", b"-Infinity", b"true", b'"1700000000"'):
        odd = body.replace(str(json.loads(body)["timestamp"]).encode(), stamp)
        refused = post(odd, sign(secret, odd))
        assert refused.status_code == 401 and "5 minutes" in refused.get_json()["message"], stamp
    assert post(body, sign(secret, body)).status_code == 200
    assert post(body, "sha512=" + sign(secret, body)).status_code == 200  # the demo app's form
    many = action_body(*(str(uuid.uuid4()) for _ in range(501)))
    assert post(many, sign(secret, many)).status_code == 400
    none = action_body()
    assert post(none, sign(secret, none)).status_code == 200  # an empty selection queues nothing


def test_the_tab_may_be_framed_by_the_connected_pim_only(
    placed: FakePim, ui: UiExtensions, client: FlaskClient
) -> None:
    tab = by_name(ui)["flask_app_product_tab"]
    page = client.get(path_of(tab), query_string={"product[uuid]": Catalog.seed_uuid(4)})
    policy = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {placed.url}" in policy and "'none'" not in policy.split("frame-")[1]
    assert "X-Frame-Options" not in page.headers
    assert "Set-Cookie" not in page.headers
    grid = by_name(ui)["flask_app_sync_selection"]
    assert client.get(path_of(grid).replace("/action", "/tab")).status_code == 404  # no tab
    assert client.post(path_of(tab).replace("/tab", "/action")).status_code == 404
    home = client.get("/")
    assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
    assert home.headers["X-Frame-Options"] == "DENY"


def test_the_tabs_data_answers_a_valid_token_once(
    placed: FakePim, ui: UiExtensions, client: FlaskClient
) -> None:
    run_sync(placed)
    tab = by_name(ui)["flask_app_product_tab"]
    data_path = path_of(tab) + "/data"
    product = Catalog.seed_uuid(4)
    user = placed.app.extensions["devpim"].user

    def ask(token: str, which: str = product) -> Any:
        return client.get(
            data_path, query_string={"uuid": which}, headers={"Authorization": f"Bearer {token}"}
        )

    token = token_for(tab, user)
    answer = ask(token)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["in_selection"] and body["product"]["uuid"] == product and body["read_at"]
    assert ask(token).status_code == 401  # a token is accepted once

    secret = tab.configuration["secret"]
    now = time.time()
    expired = jwt.encode(
        {"jti": "a", "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256"
    )
    unsigned = jwt.encode({"jti": "b", "iat": now, "exp": now + 60}, None, algorithm="none")
    other = by_name(ui)["flask_app_sync_product"].configuration["secret"]
    foreign = jwt.encode({"jti": "c", "iat": now, "exp": now + 60}, other, algorithm="HS256")
    no_jti = jwt.encode({"iat": now, "exp": now + 60}, secret, algorithm="HS256")
    for_ever = jwt.encode({"jti": "d", "iat": now, "exp": 1e20}, secret, algorithm="HS256")
    a_day = jwt.encode({"jti": "e", "iat": now, "exp": now + 86400}, secret, algorithm="HS256")
    for refused in (expired, unsigned, foreign, no_jti, for_ever, a_day, "not-a-token", ""):
        assert ask(refused).status_code == 401, refused

    outside = next(u for _, u in products_of(placed).keys("uuid") if u not in copy_of(placed))
    answer = ask(token_for(tab, user), outside).get_json()
    assert answer["in_selection"] is False and "not in the App's catalog" in answer["message"]


def test_the_hourly_trim_forgets_expired_token_ids_only(app: Flask) -> None:
    assert app.extensions[sync_current.CELERY].conf.beat_schedule["extensions-trim"]["task"] == (
        tasks.TRIM
    )
    moment = datetime.now(UTC)
    with app.app_context():
        store = current.store()
        assert store.use_token("expired", moment - timedelta(minutes=1))
        assert store.use_token("live", moment + timedelta(minutes=5))
        tasks.trim_job()
        assert store.use_token("expired", moment + timedelta(minutes=5))  # forgotten: new again
        assert not store.use_token("live", moment + timedelta(minutes=5))  # still remembered


def test_forgetting_the_pim_deletes_the_apps_extensions_there(
    placed: FakePim, ui: UiExtensions, app: Flask
) -> None:
    result = app.test_cli_runner().invoke(args=["akeneo", "forget", placed.url])
    assert result.exit_code == 0, result.output
    assert ui.items == {}


@pytest.mark.parametrize("public_url", ["https://app.example.com", None])
def test_a_forged_host_neither_re_points_nor_places_the_extensions(
    tmp_path: Any, pim: FakePim, ui: UiExtensions, caplog: Any, public_url: str | None
) -> None:
    from app import create_app
    from tests.pims import app_config

    app = create_app(app_config(tmp_path, TRUSTED_PROXIES="1", AKENEO_PUBLIC_URL=public_url))
    client = app.test_client()
    client.environ_base.update(
        {"HTTP_HOST": "evil.attacker.test", "HTTP_X_FORWARDED_HOST": "evil.attacker.test"}
    )
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        run_register_jobs()
    urls = {str(e.configuration["url"]) for e in ui.items.values()}
    if public_url is None:  # nothing trusted to register: nothing registered, and it says why
        assert not urls and "set AKENEO_PUBLIC_URL" in caplog.text
    else:
        assert len(urls) == 3 and all(u.startswith(f"{public_url}/extensions/") for u in urls)


def test_the_tab_shows_the_product_as_the_apps_page_does(
    app: Flask, client: FlaskClient, pim: FakePim, ui: UiExtensions
) -> None:
    PimUser(client, pim).connect()
    enable(pim, **{"source-price": "price", "source-main_image": "image"})
    with app.app_context():
        run_register_jobs()
        run_sync(pim)
        tab = by_name(ui)["flask_app_product_tab"]
        user = pim.app.extensions["devpim"].user
        answer = client.get(
            path_of(tab) + "/data",
            query_string={"uuid": Catalog.seed_uuid(4)},
            headers={"Authorization": f"Bearer {token_for(tab, user)}"},
        ).get_json()
        assert answer["title"] == copy_of(pim)[Catalog.seed_uuid(4)]["title"]
    shown = {value["label"]: value["text"] for value in answer["values"]}
    price = next(text for label, text in shown.items() if "rice" in label)
    assert price.endswith(" EUR") or price.endswith(" USD"), shown  # "11.90 EUR", not JSON
    assert "{" not in "".join(shown.values())
    image = client.get(answer["image"]["src"])  # no cookie: the signed link is the credential
    assert image.status_code == 200 and image.mimetype.startswith("image/")
    forged = answer["image"]["src"].rsplit("/", 1)[0] + "/not-a-signed-token"
    assert client.get(forged).status_code == 404
