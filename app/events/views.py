"""The events feature's pages: the webhook the platform POSTs to, its notifications, the panel.

The webhook answers within the platform's 5 seconds by noting the change for the sync's workers
(never by calling the PIM); 401 to what is not signed by a known subscription, 413 to a big body,
400 to one that is no event, 429 when the queue cannot take it (the platform slows down and
retries). Never a redirect or a 404 to the platform: either suspends the subscription at once.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, request, session, url_for
from kombu.exceptions import OperationalError as BrokerDown
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from .. import current as core
from ..catalogs import current as catalogs_current
from ..db import now
from ..features import public_base
from ..security import check_csrf
from ..store import Connection
from ..sync import QueueDown, queue_changes
from ..sync import current as sync_current
from . import current
from .store import ACTIVE, REVOKED, SUBSCRIBING, SUSPENDED, Duplicate, Subscription
from .subscribe import webhook_base
from .tasks import queue_catch_up, queue_forget, queue_subscribe
from .webhook import APP_DELETED, Event, Malformed, parse_event, signed

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes: an event is well under 2 KB
ACTIVATION = timedelta(minutes=10)  # a new subscription may take minutes to deliver
#: a subscribe job takes seconds: one still "subscribing" after this never ended (its worker
#: died, or its last write failed), and the page offers to subscribe again
STUCK = timedelta(minutes=2)

bp = Blueprint(
    "events",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/events/static",
)


def _answer(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"status": "error" if status >= 400 else "ok", "message": message}), status


def _body() -> bytes | tuple[Response, int]:
    if (request.content_length or 0) > MAX_BODY:
        return _answer(413, f"The body is over {MAX_BODY // 1024} KB.")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _answer(413, f"The body is over {MAX_BODY // 1024} KB.")
    return body


@bp.post("/events")
def receive() -> tuple[Response, int]:
    """The Event Platform's deliveries."""
    body = _body()
    if not isinstance(body, bytes):
        return body
    try:
        event = parse_event(json.loads(body))
    except (ValueError, Malformed) as error:
        message = str(error) if isinstance(error, Malformed) else "The body is not JSON."
        return _answer(400, message)
    try:
        return _take(event, body)
    except (SQLAlchemyError, BrokerDown) as error:  # the App's own queue is down: come back
        log.warning("event not taken: %s", type(error).__name__)
        return _answer(429, "The App cannot take events right now; send it again later.")


def _take(event: Event, body: bytes) -> tuple[Response, int]:
    store = current.store()
    subscription = store.by_subscription_id(event.subscription_id)
    if subscription is None or not signed(body, request.headers, subscription.secrets):
        # the secret may have changed since it was read (a rotation): read it again once
        subscription = store.by_subscription_id(event.subscription_id, fresh=True)
    if subscription is None or not signed(body, request.headers, subscription.secrets):
        # logged without the body: a forgery's content is nobody's business
        log.warning("event refused: not signed by a known subscription id=%r", event.id[:64])
        return _answer(401, "The event is not signed by a subscription of this App.")
    pim_url = subscription.pim_url
    last = subscription.last_event_at
    if last is None or now() - last > timedelta(minutes=1):  # one write a minute at most
        store.event_came(subscription)
    try:
        change = event.product_change()
    except Malformed as error:
        return _answer(400, str(error))
    try:
        if event.type == APP_DELETED:
            store.remember_once(event.id)
            if event.deleted_app() in (None, core.client().client_id):
                try:
                    queue_forget(pim_url)
                except BrokerDown:
                    store.release(event.id)  # its retry is taken in full
                    raise
            return _answer(200, "The App forgets this PIM.")
        if change is None or event.author() == core.client().client_id:
            store.remember_once(event.id)  # not for the copy, or the App's own write
            return _answer(200, "Nothing to do.")
        # the event id and the change in one transaction: a duplicate undoes both
        queue_changes(pim_url, {change[0]: change[1]}, lambda db: store.take(db, event.id))
    except Duplicate:
        return _answer(200, "Already taken (a duplicate delivery).")
    except QueueDown as down:
        log.warning("event not queued pim=%s: %s", pim_url, down)
        store.release(event.id)  # its next delivery is taken in full (the change is kept)
        return _answer(429, "The App's queue is full or down; send it again later.")
    return _answer(200, "Queued.")


@bp.post("/events/notifications")
def notified() -> tuple[Response, int]:
    """The platform says a subscription was suspended, revoked or resumed."""
    body = _body()
    if not isinstance(body, bytes):
        return body
    try:
        notice = json.loads(body)
    except ValueError:
        return _answer(400, "The body is not JSON.")
    subscriber_id = notice.get("subscriber_id") if isinstance(notice, dict) else None
    known = current.store().by_subscriber_id(str(subscriber_id)) if subscriber_id else None
    secrets = [known.notification_secret] if known and known.notification_secret else []
    if known is None or not signed(body, request.headers, secrets):
        log.warning("notification refused: not signed by a subscriber of this App")
        return _answer(401, "The notification is not signed by a subscriber of this App.")
    kind = str(notice.get("notification_type", ""))
    reason = str(notice.get("reason") or "")[:300] or None
    if kind.startswith("subscription.suspended"):
        by = "you" if kind.endswith(".user") else "the Event Platform"
        text = f"Suspended by {by}" + (f": {reason}" if reason else "") + "."
        current.store().set_state(known.pim_url, SUSPENDED, text)
    elif kind == "subscription.revoked":
        current.store().set_state(known.pim_url, REVOKED, reason or "Revoked in the PIM.")
    elif kind == "subscription.resumed":
        current.store().set_state(known.pim_url, ACTIVE)
        queue_catch_up(known.pim_url)  # what changed while it was suspended was never sent
    log.info("event notification pim=%s type=%s", known.pim_url, kind[:64])
    return _answer(200, "Noted.")


@bp.post("/events/subscribe")
def subscribe_again() -> Response:
    """Subscribe again (after ticking the permission in the PIM, or a suspension)."""
    check_csrf()
    pim_url = core.flow().connected_pim(session)
    if pim_url:
        queue_subscribe(pim_url, webhook_base(current.settings(), public_base()))
        flash("Subscribing to the PIM's events: this page says when it is done.")
    return redirect(url_for("app.home"))


def panel(connection: Connection) -> dict[str, Any] | None:
    """The connected page's events panel: whether changes arrive live, and if not, why."""
    return _said(connection.pim_url)


@bp.get("/events/status")
def status() -> tuple[Response, int]:
    """What the panel says, for its script to follow the state without a reload (the signed-in
    browser's PIM only)."""
    pim_url = core.flow().connected_pim(session)
    if not pim_url:
        return _answer(401, "Sign in from your PIM first.")
    said = _said(pim_url)
    return jsonify({k: said[k] for k in ("tone", "badge", "text", "retry")}), 200


def _said(pim_url: str) -> dict[str, Any]:
    subscription = current.store().subscription(pim_url)
    tone, badge, text = describe(subscription, local=current.settings().http_allowed)
    if tone == "ok" and not _copying(pim_url):
        # subscribed, but there is no copy to keep: saying "live" would promise what is not
        tone, badge = "wait", "Subscribed"
        text = "Changes will reach the copy within seconds once the catalog is enabled and synced."
    retry = subscription is None or subscription.state != ACTIVE
    retry = retry and not (subscription and _subscribing(subscription))
    return {
        "subscription": subscription,
        "tone": tone,
        "badge": badge,
        "text": text,
        "retry": retry,
    }


def _copying(pim_url: str) -> bool:
    """True when the App holds a copy of the PIM's current catalog (events have one to keep)."""
    found = sync_current.store().status(pim_url)
    return found is not None and found.has_copy_of(catalogs_current.store().catalog_id(pim_url))


def _subscribing(subscription: Subscription) -> bool:
    """True while a subscribe job may still be at work."""
    changed = subscription.updated_at
    return subscription.state == SUBSCRIBING and (changed is None or now() - changed < STUCK)


def describe(subscription: Subscription | None, *, local: bool = False) -> tuple[str, str, str]:
    """(tone, badge, sentence) for the page: tone ok, wait or warn; the badge's word is not
    repeated by the sentence. A `local` platform (the local PIM's) delivers at once; Akeneo's
    takes a few minutes to start delivering to a new subscription."""
    if subscription is None:
        return "warn", "Off", "Not subscribed to the PIM's events: the sync keeps the copy."
    if _subscribing(subscription):
        return "wait", "Subscribing", "The App is subscribing to the PIM's events…"
    if subscription.state == SUBSCRIBING:
        return (
            "warn",
            "Off",
            (
                "The subscription job did not finish (are the workers running?): press Subscribe "
                "again."
            ),
        )
    if subscription.state == ACTIVE:
        if subscription.last_event_at:
            return "ok", "Live", "Changes in the PIM reach the copy within seconds."
        started = subscription.subscribed_at
        if not local and started and now() - started < ACTIVATION:
            return (
                "wait",
                "Activating",
                (
                    "Akeneo's platform takes a few minutes to deliver to a new subscription; then "
                    "changes reach the copy within seconds."
                ),
            )
        return "ok", "Live", "Subscribed: changes in the PIM reach the copy within seconds."
    return "warn", "Off", subscription.reason or subscription.state.capitalize()
