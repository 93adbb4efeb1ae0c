"""Live changes: the subscription's life, the webhook's checks, and a change reaching the copy.

The local PIM plays the Event Platform (management API, signed CloudEvents, retries, suspension,
notifications) and delivers to the App's test client in the test's thread.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError as BrokerDown
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from app import current
from app.db import now
from app.events import current as events_current
from app.events import tasks as event_tasks
from app.events.store import SubscriptionRow
from app.events.webhook import signature
from app.sync import current as sync_current
from app.sync import tasks as sync_tasks
from devpim.catalogs import selected
from devpim.events import EventPlatform
from devpim.products import Catalog
from tests.catalogs.pim_catalogs import the_catalog
from tests.pims import CLIENT_ID, FakePim, PimUser, form_token

from ..sync.conftest import enable
from ..sync.helpers import copy_of, drop_queued, products_of, queued_jobs, run_sync
from .conftest import create, run_subscribe_jobs

PRODUCT_UPDATED = "com.akeneo.pim.v1.product.updated"


def rename(pim: FakePim, product_uuid: str, title: str, via: str = "ui") -> None:
    values = {"name": [{"locale": "en_US", "scope": None, "data": title}]}
    products_of(pim).upsert(product_uuid, {"values": values}, via=via)


def apply_changes(pim: FakePim) -> None:
    """Play the change jobs the webhook queued, as the sync's worker would."""
    for (pim_url,) in queued_jobs(sync_tasks.APPLY):
        sync_tasks.apply_changes(pim_url)
    drop_queued()


def the_subscription(platform: EventPlatform) -> Any:
    (subscription,) = platform.subscriptions.values()
    return subscription


def event_body(subscription_id: str, product_uuid: str, **extra: Any) -> bytes:
    event = {
        "specversion": "1.0",
        "id": extra.pop("id", str(uuid.uuid4())),
        "source": "akeneo-event-platform",
        "type": extra.pop("type", PRODUCT_UPDATED),
        "subject": subscription_id,
        "time": "2026-12-02T10:00:00Z",
        "data": {"product": {"uuid": product_uuid}, "author": {"identifier": "1", "type": "ui"}},
    }
    return json.dumps({**event, **extra}).encode()


def deliver(
    client: FlaskClient, body: bytes, secret: str | None, algorithm: str = "HmacSHA256"
) -> Any:
    headers = {"Content-Type": "application/json", "X-AKENEO-SIGNATURE-ALGORITHM": algorithm}
    if secret:
        headers["X-AKENEO-SIGNATURE-PRIMARY"] = signature(secret, body)
    return client.post("/events", data=body, headers=headers)


def waiting(pim: FakePim) -> int:
    return sync_current.changes().count(pim.url)


def home(client: FlaskClient) -> str:
    return client.get("/").get_data(as_text=True)


# -- subscribing ---------------------------------------------------------------------------------


def test_connecting_subscribes_once_and_connecting_again_finds_what_exists(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    (subscriber,) = platform.subscribers.values()
    subscription = the_subscription(platform)
    assert subscription.config["url"] == "http://localhost/events"
    assert sorted(subscription.events) == [
        "com.akeneo.pim.v1.app.deleted",
        "com.akeneo.pim.v1.product.created",
        "com.akeneo.pim.v1.product.deleted",
        "com.akeneo.pim.v1.product.updated",
    ]
    assert subscriber.contact["notification_webhook_url"] == "http://localhost/events/notifications"
    stored = events_current.store().subscription(subscribed.url)
    assert stored and stored.secrets == (subscription.config["secret"]["primary"],)
    assert "once the catalog is enabled and synced" in home(client)  # no copy yet: not "live"

    PimUser(client, subscribed).connect()  # connected again: no second subscriber
    assert run_subscribe_jobs() == ["active"]
    assert list(platform.subscribers) == [subscriber.id]
    assert list(platform.subscriptions) == [subscription.id]


def test_secrets_are_stored_encrypted(subscribed: FakePim, platform: EventPlatform) -> None:
    primary = the_subscription(platform).config["secret"]["primary"]
    with current.database().engine.connect() as db:
        rows = db.exec_driver_sql("SELECT * FROM event_subscriptions").all()
    assert rows and primary not in repr(rows)


def test_the_page_says_where_to_allow_events_and_subscribes_again(
    app: Flask, client: FlaskClient, pim: FakePim, platform: EventPlatform
) -> None:
    platform.allowed = False  # the permission checkbox is not ticked
    PimUser(client, pim).connect()
    with app.app_context():
        assert run_subscribe_jobs() == ["unavailable"]
        page = home(client)
        assert "Connection settings" in page and "Subscribe again" in page
        assert not platform.subscriptions

        platform.allowed = True  # the PIM user ticks it, then presses Subscribe again
        drop_queued()
        answer = client.post("/events/subscribe", data={"csrf_token": form_token(page)})
        assert answer.status_code == 302
        assert run_subscribe_jobs() == ["active"]
        assert len(platform.subscriptions) == 1
        assert "once the catalog is enabled and synced" in home(client)


FORGED = {"HTTP_HOST": "evil.attacker.test", "HTTP_X_FORWARDED_HOST": "evil.attacker.test"}


def test_a_forged_host_does_not_re_point_the_subscription(
    tmp_path: Any, pim: FakePim, platform: EventPlatform
) -> None:
    app = create(tmp_path, pim, TRUSTED_PROXIES="1", AKENEO_PUBLIC_URL="https://app.example.com")
    client = app.test_client()
    client.environ_base.update(FORGED)  # the callback, the page and Subscribe again, all forged
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        assert run_subscribe_jobs() == ["active"]
        page = home(client)
        answer = client.post("/events/subscribe", data={"csrf_token": form_token(page)})
        assert answer.status_code == 302
        assert run_subscribe_jobs() == ["active"]
    (subscriber,) = platform.subscribers.values()
    assert the_subscription(platform).config["url"] == "https://app.example.com/events"
    notified = subscriber.contact["notification_webhook_url"]
    assert notified == "https://app.example.com/events/notifications"
    assert "evil" not in page


def test_without_a_public_url_nothing_is_registered_and_the_page_says_what_to_set(
    tmp_path: Any, pim: FakePim, platform: EventPlatform
) -> None:
    app = create(tmp_path, pim, TRUSTED_PROXIES="1", AKENEO_PUBLIC_URL=None)
    client = app.test_client()
    client.environ_base.update(FORGED)
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        assert run_subscribe_jobs() == ["unavailable"]
        page = home(client)
    assert "set AKENEO_PUBLIC_URL" in page and "Subscribe again" in page
    assert not platform.subscribers and not platform.subscriptions


def test_an_http_address_is_refused_for_a_real_platform(tmp_path: Any, pim: FakePim) -> None:
    from app import create_app
    from app.errors import ConfigError
    from tests.pims import app_config

    with pytest.raises(ConfigError, match="AKENEO_EVENT_PLATFORM_URL must be an https"):
        create_app(
            app_config(
                tmp_path,
                AKENEO_PIM_ALLOW_HTTP="0",
                AKENEO_PUBLIC_URL=None,
                AKENEO_EVENT_PLATFORM_URL="http://e.test",
            )
        )


# -- a change reaches the copy -------------------------------------------------------------------


def test_a_renamed_product_reaches_the_copy_and_a_deleted_one_leaves_it(
    subscribed: FakePim, client: FlaskClient
) -> None:
    run_sync(subscribed)
    renamed, deleted = Catalog.seed_uuid(4), Catalog.seed_uuid(7)
    rename(subscribed, renamed, "Renamed in the PIM")  # delivered to the webhook at once
    products_of(subscribed).delete(deleted, via="ui")
    assert waiting(subscribed) == 2
    apply_changes(subscribed)
    copy = copy_of(subscribed)
    assert copy[renamed]["title"] == "Renamed in the PIM"
    assert deleted not in copy
    page = home(client)
    assert ">Live</span>" in page and "Changes in the PIM reach the copy within seconds" in page


def test_events_for_products_outside_the_selection_leave_the_copy_alone(
    subscribed: FakePim,
) -> None:
    run_sync(subscribed)
    outside = next(
        u
        for _, u in products_of(subscribed).keys("uuid")
        if not selected(the_catalog(subscribed), products_of(subscribed).get(u))  # type: ignore[arg-type]
    )
    rename(subscribed, outside, "Not for the App")
    apply_changes(subscribed)
    assert outside not in copy_of(subscribed) and len(copy_of(subscribed)) == 54


def test_the_apps_own_writes_are_ignored(subscribed: FakePim) -> None:
    run_sync(subscribed)
    rename(subscribed, Catalog.seed_uuid(4), "Written by the App", via="api")
    assert waiting(subscribed) == 0  # authored by the App's client id: no loop of events


# -- what the webhook refuses --------------------------------------------------------------------


def test_forged_missing_and_wrong_algorithm_signatures_get_401(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient, caplog: Any
) -> None:
    subscription = the_subscription(platform)
    secret = subscription.config["secret"]["primary"]
    body = event_body(subscription.id, Catalog.seed_uuid(4))
    assert deliver(client, body, "a-forger-s-own-secret").status_code == 401
    assert deliver(client, body, None).status_code == 401
    assert deliver(client, body, secret, algorithm="HmacSHA512").status_code == 401
    tampered = body.replace(b"product.updated", b"product.deleted")
    headers = {
        "X-AKENEO-SIGNATURE-ALGORITHM": "HmacSHA256",
        "X-AKENEO-SIGNATURE-PRIMARY": signature(secret, body),
    }
    assert client.post("/events", data=tampered, headers=headers).status_code == 401
    unknown = event_body(str(uuid.uuid4()), Catalog.seed_uuid(4))
    assert deliver(client, unknown, secret).status_code == 401
    assert waiting(subscribed) == 0
    assert Catalog.seed_uuid(4) not in caplog.text  # refused bodies are not logged
    assert secret not in caplog.text
    assert deliver(client, body, secret).status_code == 200  # the real one passes


def test_a_replayed_event_is_taken_once(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    subscription = the_subscription(platform)
    body = event_body(subscription.id, Catalog.seed_uuid(4))
    secret = subscription.config["secret"]["primary"]
    assert deliver(client, body, secret).get_json()["message"] == "Queued."
    apply_changes(subscribed)
    again = deliver(client, body, secret)
    assert again.status_code == 200 and "duplicate" in again.get_json()["message"]
    assert waiting(subscribed) == 0


def test_an_oversized_body_gets_413_and_one_that_is_no_event_400(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    secret = the_subscription(platform).config["secret"]["primary"]
    big = b'{"padding": "' + b"x" * 70_000 + b'"}'
    assert deliver(client, big, secret).status_code == 413
    assert deliver(client, b"not json", secret).status_code == 400
    answer = deliver(client, b'{"type": "x"}', secret)
    assert answer.status_code == 400 and "no id, subject" in answer.get_json()["message"]


def test_the_queue_down_answers_429_and_loses_nothing(
    subscribed: FakePim, platform: EventPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change is noted in the database first: a 429 asks the platform to come back, and the
    sweep queues the job nobody took once the broker answers again."""
    run_sync(subscribed)
    product = Catalog.seed_uuid(4)
    statuses: list[int] = []
    post = platform.post
    platform.post = lambda url, body, headers: (
        statuses.append(post(url, body, headers)) or statuses[-1]
    )

    def broker_down(*_: Any, **__: Any) -> None:
        raise BrokerDown("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(sync_current.celery(), "send_task", broker_down)
        rename(subscribed, product, "Renamed while the queue was down")
    assert statuses == [429, 200]  # the platform's retry finds the change kept
    assert waiting(subscribed) == 1

    with current.database().engine.begin() as db:  # half a minute later, no job took it
        db.exec_driver_sql("UPDATE sync_changes SET noticed_at = '2000-01-01 00:00:00.000000'")
        # (and the run that read it before its change, earlier still)
        db.exec_driver_sql("UPDATE synced_products SET synced_at = '1999-01-01 00:00:00.000000'")
    sync_tasks.declare_queue(sync_current.celery())
    sync_tasks.sweep()  # the broker is back: the sweep queues the change's job
    apply_changes(subscribed)
    assert copy_of(subscribed)[product]["title"] == "Renamed while the queue was down"


# -- the subscription's life ---------------------------------------------------------------------


def test_rotating_the_secret_keeps_the_old_one_until_the_platform_signs_with_the_new(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient, app: Flask
) -> None:
    subscription = the_subscription(platform)
    old = subscription.config["secret"]["primary"]
    in_flight = event_body(subscription.id, Catalog.seed_uuid(4))  # signed before the rotation
    result = app.test_cli_runner().invoke(args=["akeneo", "rotate-event-secret"])
    assert result.exit_code == 0, result.output
    new = subscription.config["secret"]["primary"]
    assert new != old and subscription.config["secret"]["secondary"] == old
    assert deliver(client, in_flight, old).status_code == 200  # the old one still verifies
    assert (
        deliver(client, event_body(subscription.id, Catalog.seed_uuid(5)), new).status_code == 200
    )
    assert old not in result.output and new not in result.output


def test_a_suspension_is_said_on_the_page_and_subscribing_again_makes_a_new_one(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    subscription = the_subscription(platform)
    answer_of_app = platform.post
    platform.post = lambda url, body, headers: (  # a proxy in front of the App answers 404
        404 if url.endswith("/events") else answer_of_app(url, body, headers)
    )
    rename(subscribed, Catalog.seed_uuid(4), "Lost")
    assert subscription.status == "suspended"  # at once, and the notification told the App
    page = home(client)
    assert "Suspended by the Event Platform: The destination answered 404." in page

    platform.post = answer_of_app
    client.post("/events/subscribe", data={"csrf_token": form_token(page)})
    assert run_subscribe_jobs() == ["active"]
    assert the_subscription(platform).status == "active"


def test_a_forged_notification_changes_nothing(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    (subscriber,) = platform.subscribers.values()
    body = json.dumps(
        {"notification_type": "subscription.revoked", "subscriber_id": subscriber.id}
    ).encode()
    headers = {
        "X-AKENEO-SIGNATURE-ALGORITHM": "HmacSHA256",
        "X-AKENEO-SIGNATURE-PRIMARY": signature("guessed-secret-0123456789", body),
    }
    assert client.post("/events/notifications", data=body, headers=headers).status_code == 401
    stored = events_current.store().subscription(subscribed.url)
    assert stored and stored.state == "active"


def test_the_app_deleted_in_the_pim_forgets_that_pim_entirely(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    run_sync(subscribed)
    pim_side = subscribed.app.test_client()
    pim_side.post("/apps/revoke")  # app.deleted is delivered, then the subscription revoked
    ((pim_url,),) = queued_jobs(event_tasks.FORGET)
    assert event_tasks.forget_job(pim_url)
    assert current.store().connection(subscribed.url) is None
    assert copy_of_gone(subscribed)
    assert events_current.store().subscription(subscribed.url) is None


def copy_of_gone(pim: FakePim) -> bool:
    with current.database().engine.connect() as db:
        count = db.exec_driver_sql(
            "SELECT count(*) FROM synced_products WHERE pim_url = ?", (pim.url,)
        ).scalar_one()
    return count == 0


def test_forgetting_a_pim_deletes_the_subscriber_in_the_platform(
    subscribed: FakePim, platform: EventPlatform, app: Flask
) -> None:
    result = app.test_cli_runner().invoke(args=["akeneo", "forget", subscribed.url])
    assert result.exit_code == 0, result.output
    assert not platform.subscribers and not platform.subscriptions


# -- the fourth attack round: half-done subscriptions --------------------------------------------


def subscriptions_path(platform: EventPlatform) -> str:
    (subscriber,) = platform.subscribers.values()
    return f"/event-platform/api/v1/subscribers/{subscriber.id}/subscriptions"


def test_a_subscribe_job_that_crashes_ends_failed_and_offers_to_subscribe_again(
    app: Flask, client: FlaskClient, pim: FakePim, platform: EventPlatform, monkeypatch: Any
) -> None:
    PimUser(client, pim).connect()
    enable(pim)

    def locked(*_: Any, **__: Any) -> None:
        raise OperationalError("UPDATE event_subscriptions", {}, Exception("database is locked"))

    with app.app_context(), monkeypatch.context() as patched:
        patched.setattr(events_current.store(), "save", locked)
        assert run_subscribe_jobs() == ["failed"]
        page = home(client)
    assert "unexpected error (OperationalError)" in page and "Subscribe again" in page


def test_a_subscribing_state_no_job_ended_offers_to_subscribe_again(
    app: Flask, client: FlaskClient, pim: FakePim
) -> None:
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        drop_queued()  # the job was lost with its worker: the state says "subscribing"
        assert ">Subscribing</span>" in home(client)
        with current.database().engine.begin() as db:
            db.execute(update(SubscriptionRow).values(updated_at=now() - timedelta(minutes=3)))
        page = home(client)
    assert "did not finish" in page and "Subscribe again" in page


def test_a_subscription_that_fails_half_way_keeps_the_secrets_in_step(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    path = subscriptions_path(platform)
    subscription = the_subscription(platform)
    item = f"{path}/{subscription.id}"
    subscribed.answer("PATCH", item, status=500, body={"code": 500, "message": "Boom"})
    page = home(client)
    client.post("/events/subscribe", data={"csrf_token": form_token(page)})
    assert run_subscribe_jobs() == ["failed"]
    del subscribed.overrides[("PATCH", item)]

    # the platform signs with what it was last given: the App still takes it
    platform.suspend(subscription, "The destination answered 500.")
    assert "Suspended by the Event Platform" in home(client)
    body = event_body(subscription.id, Catalog.seed_uuid(4))
    assert deliver(client, body, subscription.config["secret"]["primary"]).status_code != 401


def test_the_apps_subscriber_is_adopted_whatever_its_name_and_named_again(
    app: Flask, client: FlaskClient, pim: FakePim, platform: EventPlatform
) -> None:
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        token = current.store().connection(pim.url).access_token  # type: ignore[union-attr]
        headers = {"X-PIM-URL": pim.url, "X-PIM-CLIENT-ID": CLIENT_ID, "X-PIM-TOKEN": token}
        made = pim.app.test_client().post(  # made by an earlier copy of the App, named otherwise
            "/event-platform/api/v1/subscribers",
            json={"name": "my old name", "contact": {"technical_email": "ops@example.com"}},
            headers=headers,
        )
        assert made.status_code == 201, made.get_data(as_text=True)
        assert run_subscribe_jobs() == ["active"]
    (subscriber,) = platform.subscribers.values()  # the same one: no second subscriber
    assert subscriber.id == made.get_json()["id"] and subscriber.name == "akeneo-flask-app"
    assert subscriber.contact["technical_email"] == "julia@example.com"  # who connected


def test_the_contact_email_comes_from_the_setting_before_the_user(
    tmp_path: Any, pim: FakePim, platform: EventPlatform
) -> None:
    app = create(tmp_path, pim, AKENEO_EVENTS_CONTACT_EMAIL="ops@acme.example")
    client = app.test_client()
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        assert run_subscribe_jobs() == ["active"]
    (subscriber,) = platform.subscribers.values()
    assert subscriber.contact["technical_email"] == "ops@acme.example"


def test_a_pim_on_this_machine_is_never_sent_to_akeneos_platform() -> None:
    from app.events.settings import DEFAULT_PLATFORM_URL, EventSettings

    default = EventSettings.from_env({})
    assert default.platform_for("http://127.0.0.1:8001") == (
        "http://127.0.0.1:8001/event-platform/api/v1"
    )
    assert default.platform_for("https://acme.cloud.akeneo.com") == DEFAULT_PLATFORM_URL
    chosen = EventSettings.from_env({"AKENEO_EVENT_PLATFORM_URL": "https://events.test/api/v1"})
    assert chosen.platform_for("http://127.0.0.1:8001") == "https://events.test/api/v1"


# -- a real PIM: events lost while suspended are caught up -------------------------------------


def run_catch_up_jobs(pim: FakePim) -> None:
    """Play the catch-up jobs, then the sync they queued, as the workers would."""
    jobs = queued_jobs(event_tasks.CATCH_UP)
    assert jobs, "no catch-up was queued"
    drop_queued()
    for args in jobs:
        assert event_tasks.catch_up_job(*args)
    run_queued_sync(pim)


def run_queued_sync(pim: FakePim) -> None:
    steps = queued_jobs(sync_tasks.STEP)
    drop_queued()
    while steps:
        for args in steps:
            sync_tasks.sync_step(*args)
        steps = queued_jobs(sync_tasks.STEP)
        drop_queued()


def test_changes_made_while_suspended_reach_the_copy_once_subscribed_again(
    subscribed: FakePim, platform: EventPlatform, client: FlaskClient
) -> None:
    run_sync(subscribed)
    platform.suspend(the_subscription(platform), "Success rate dropped below 90%")
    product = Catalog.seed_uuid(4)
    rename(subscribed, product, "Renamed while suspended")  # the platform sends nothing
    apply_changes(subscribed)
    assert copy_of(subscribed)[product]["title"] != "Renamed while suspended"

    page = home(client)
    client.post("/events/subscribe", data={"csrf_token": form_token(page)})
    assert run_subscribe_jobs() == ["active"]  # made again; what was lost is read
    run_catch_up_jobs(subscribed)
    assert copy_of(subscribed)[product]["title"] == "Renamed while suspended"


def test_a_resumed_subscription_catches_up(subscribed: FakePim, platform: EventPlatform) -> None:
    run_sync(subscribed)
    subscription = the_subscription(platform)
    platform.suspend(subscription, "Suspended by the user.", by="user")
    product = Catalog.seed_uuid(7)
    rename(subscribed, product, "Renamed while paused")
    drop_queued()
    platform.resume(subscription)  # notified: resumed
    run_catch_up_jobs(subscribed)
    assert copy_of(subscribed)[product]["title"] == "Renamed while paused"


def test_the_periodic_check_finds_a_suspension_the_app_was_not_told_of(
    subscribed: FakePim, platform: EventPlatform
) -> None:
    run_sync(subscribed)
    subscription = the_subscription(platform)
    answer_of_app = platform.post
    platform.post = lambda url, body, headers: (  # the App is down: nothing reaches it
        None if url.endswith("/notifications") else answer_of_app(url, body, headers)
    )
    platform.suspend(subscription, "Success rate dropped below 90%")
    platform.post = answer_of_app
    product = Catalog.seed_uuid(4)
    rename(subscribed, product, "Renamed while the App was down")
    assert events_current.store().subscription(subscribed.url).state == "active"  # not told

    assert event_tasks.check_job() == 1
    assert run_subscribe_jobs() == ["active"]
    run_catch_up_jobs(subscribed)
    assert copy_of(subscribed)[product]["title"] == "Renamed while the App was down"
    assert the_subscription(platform).status == "active"


def test_the_panel_follows_the_state_and_waits_for_akeneos_platform_only(
    app: Flask, client: FlaskClient, pim: FakePim, platform: EventPlatform
) -> None:
    from app.events.views import describe

    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        status = client.get("/events/status").get_json()
        assert status["badge"] == "Subscribing" and status["retry"] is False
        run_subscribe_jobs()
        run_sync(pim)
        status = client.get("/events/status").get_json()
        assert status["badge"] == "Live" and status["tone"] == "ok"  # the local platform
        assert not status["text"].startswith("Live")  # the badge's word is not said twice
        subscription = events_current.store().subscription(pim.url)
    assert describe(subscription, local=False)[1] == "Activating"  # Akeneo's takes minutes
    assert client.application.test_client().get("/events/status").status_code == 401
