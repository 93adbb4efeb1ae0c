"""The local PIM plays Akeneo's Event Platform: its management API, signed deliveries, retries,
suspensions and notification webhooks, as `event-platform/` in Akeneo's reference describes.

- Management API at `{PIM_URL}/event-platform/api/v1` (subscribers, their https subscriptions),
  authenticated as the real one: `X-PIM-URL`, `X-PIM-TOKEN` (the App's token) and
  `X-PIM-CLIENT-ID`; 403 while the permission checkbox on the App's page is not ticked.
- Deliveries: CloudEvents 1.0 JSON, signed with HMAC-SHA256 (hex) under the primary and the
  secondary secret (`X-AKENEO-SIGNATURE-PRIMARY`, `-SECONDARY`, `-ALGORITHM: HmacSHA256`), POSTed
  with no redirect followed and a 5 s time-out. A 3xx or a 404 suspends the subscription at once;
  a 429, 5xx, other 4xx or time-out is retried (seconds apart here, minutes on the real one),
  then dropped; under 90 % success in the last hour (10 deliveries at least) suspends it too.
- Notifications: a suspension, a resumption or a revocation is POSTed (signed with the
  subscriber's notification secret) to its `notification_webhook_url`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

BASE = "/event-platform/api/v1"
MAX_SUBSCRIBERS = 20  # per PIM
MAX_SUBSCRIPTIONS = 20  # per subscriber
RETRY_WAITS = (1.0, 2.0, 4.0)  # seconds (the real platform: 5, 10 and 20 minutes)
MAX_RATE = 100.0  # deliveries a second (Akeneo: up to 100 events/s per subscription)
DELIVERERS = 8  # deliveries in flight at once
NOTIFY_WAITS = (1.0, 2.0)
DELIVERY_TIMEOUT = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: POST(url, body, headers) -> the HTTP status, or None when the App did not answer in time
Post = Callable[[str, bytes, dict[str, str]], int | None]


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Subscriber:
    id: str
    name: str
    contact: dict[str, Any]
    status: str = "active"
    created_at: str = field(default_factory=now_iso)

    def public(self, pim_url: str) -> dict[str, Any]:
        contact = {k: v for k, v in self.contact.items() if k != "notification_webhook_secret"}
        return {
            "id": self.id,
            "name": self.name,
            "subject": pim_url,
            "status": self.status,
            "contact": contact,
            "created_at": self.created_at,
            "updated_at": now_iso(),
        }


@dataclass
class Subscription:
    id: str
    subscriber_id: str
    events: list[str]
    config: dict[str, Any]
    status: str = "active"
    #: (when, delivered) of the last hour's attempts: the 90 % rule
    results: deque[tuple[float, bool]] = field(default_factory=deque)

    def public(self, pim_url: str) -> dict[str, Any]:
        config = {k: v for k, v in self.config.items() if k != "secret"}
        return {
            "id": self.id,
            "subscriber_id": self.subscriber_id,
            "source": "pim",
            "subject": pim_url,
            "type": "https",
            "events": self.events,
            "status": self.status,
            "config": config,
        }


class EventPlatform:
    """The platform's memory for this PIM, and its delivery thread."""

    def __init__(self, pim_url: str, *, post: Post | None = None) -> None:
        self.pim_url = pim_url
        self.allowed = True  # the permission checkbox in the App's connection settings
        self.subscribers: dict[str, Subscriber] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.post: Post = post or _post
        self.inline = False  # tests: deliver in the caller's thread, one attempt at a time
        self.retry_waits = RETRY_WAITS
        self.sleep: Callable[[float], None] = time.sleep
        self.delivered: list[dict[str, Any]] = []  # what was delivered (for the page and tests)
        #: deliveries a second at most, as the real platform (an import of 1,000 products is
        #: 1,000 events over 10 s or more)
        self.max_rate = MAX_RATE
        self._queue: queue.Queue[tuple[str, dict[str, Any], int]] = queue.Queue()
        self._lock = threading.RLock()
        # deliveries go DELIVERERS at a time (one slow answer does not hold the others back),
        # started at MAX_RATE a second at most
        self._threads: list[threading.Thread] = []
        self._pace_lock = threading.Lock()
        self._next_at = 0.0

    # -- what the PIM does ---------------------------------------------------------------------

    def emit(self, event_type: str, data: dict[str, Any]) -> int:
        """An event happened in the PIM: deliver it to every active subscription to it."""
        with self._lock:
            targets = [
                s
                for s in self.subscriptions.values()
                if s.status == "active" and event_type in s.events
            ]
        for subscription in targets:
            event = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "akeneo-event-platform",
                "type": event_type,
                "subject": subscription.id,
                "datacontenttype": "application/json",
                "dataschema": f"https://event.prd.sdk.akeneo.cloud/spec/{event_type}.schema.json",
                "time": now_iso(),
                "data": data,
            }
            self._send(subscription.id, event, 0)
        return len(targets)

    def backlog(self) -> int:
        """Events waiting for their delivery (the platform sends 100 a second at most)."""
        return self._queue.qsize()

    def revoke_all(self) -> None:
        """The App was removed from the PIM: every subscription is revoked, and said so."""
        with self._lock:
            revoked = [s for s in self.subscriptions.values() if s.status != "revoked"]
            for subscription in revoked:
                subscription.status = "revoked"
        for subscription in revoked:
            self.notify(subscription, "subscription.revoked", "The App was removed from the PIM.")

    def suspend(self, subscription: Subscription, reason: str, *, by: str = "system") -> None:
        with self._lock:
            if subscription.status != "active":
                return
            subscription.status = "suspended"
        self.notify(subscription, f"subscription.suspended.{by}", reason)

    def resume(self, subscription: Subscription) -> None:
        with self._lock:
            subscription.status = "active"
            subscription.results.clear()
        self.notify(subscription, "subscription.resumed", None)

    # -- deliveries ----------------------------------------------------------------------------

    def _send(self, subscription_id: str, event: dict[str, Any], attempt: int) -> None:
        if self.inline:
            self._attempt(subscription_id, event, attempt)
            return
        self._queue.put((subscription_id, event, attempt))
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < DELIVERERS:
                thread = threading.Thread(target=self._deliver_forever, daemon=True)
                thread.start()
                self._threads.append(thread)

    def _deliver_forever(self) -> None:
        while True:
            subscription_id, event, attempt = self._queue.get()
            with self._pace_lock:  # one pace for all the deliverers: MAX_RATE a second
                moment = time.monotonic()
                start = max(self._next_at, moment)
                self._next_at = start + 1.0 / self.max_rate
            if start > moment:
                time.sleep(start - moment)
            self._attempt(subscription_id, event, attempt)

    def _attempt(self, subscription_id: str, event: dict[str, Any], attempt: int) -> None:
        with self._lock:
            subscription = self.subscriptions.get(subscription_id)
            if subscription is None or subscription.status != "active":
                return  # suspended or deleted meanwhile: the event is lost, as documented
            url = str(subscription.config.get("url"))
            secret = dict(subscription.config.get("secret") or {})
        body = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "akeneo/event-platform",
            "X-AKENEO-SIGNATURE-ALGORITHM": "HmacSHA256",
            "X-AKENEO-SIGNATURE-PRIMARY": sign(secret["primary"], body),
        }
        if secret.get("secondary"):
            headers["X-AKENEO-SIGNATURE-SECONDARY"] = sign(secret["secondary"], body)
        status = self.post(url, body, headers)
        delivered = status is not None and 200 <= status < 300
        self._record(subscription, delivered)
        if delivered:
            with self._lock:
                self.delivered.append(event)
            return
        if status is not None and (300 <= status < 400 or status == 404):
            self.suspend(subscription, f"The destination answered {status}.")
            return
        if self._success_rate_too_low(subscription):
            self.suspend(subscription, "Success rate dropped below 90%")
            return
        if attempt < len(self.retry_waits):
            wait = self.retry_waits[attempt]
            if self.inline:
                self.sleep(wait)
                self._attempt(subscription_id, event, attempt + 1)
            else:
                threading.Timer(wait, self._send, (subscription_id, event, attempt + 1)).start()

    def _record(self, subscription: Subscription, delivered: bool) -> None:
        moment = time.monotonic()
        with self._lock:
            subscription.results.append((moment, delivered))
            while subscription.results and subscription.results[0][0] < moment - 3600:
                subscription.results.popleft()

    def _success_rate_too_low(self, subscription: Subscription) -> bool:
        with self._lock:
            results = list(subscription.results)
        if len(results) < 10:
            return False
        return sum(ok for _, ok in results) / len(results) < 0.9

    def notify(self, subscription: Subscription, kind: str, reason: str | None) -> None:
        """POST a status change to the subscriber's notification webhook, if it has one."""
        with self._lock:
            subscriber = self.subscribers.get(subscription.subscriber_id)
        contact = subscriber.contact if subscriber else {}
        url, secret = (
            contact.get("notification_webhook_url"),
            contact.get("notification_webhook_secret"),
        )
        if "webhook" not in contact.get("notification_channels", []) or not url or not secret:
            return
        payload = {
            "notification_type": kind,
            "timestamp": now_iso(),
            "subscription_id": subscription.id,
            "subscriber_id": subscription.subscriber_id,
            "destination": subscription.config.get("url"),
            "events": subscription.events,
            "subject": self.pim_url + "/",
        }
        if reason:
            payload["reason"] = reason
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "akeneo/event-platform",
            "X-AKENEO-SIGNATURE-ALGORITHM": "HmacSHA256",
            "X-AKENEO-SIGNATURE-PRIMARY": sign(secret, body),
        }

        def send() -> None:
            for wait in (0.0, *NOTIFY_WAITS):
                self.sleep(wait)
                status = self.post(url, body, headers)
                if status is not None and (
                    200 <= status < 300 or 400 <= status < 500 and status != 429
                ):
                    return

        if self.inline:
            send()
        else:
            threading.Thread(target=send, daemon=True).start()

    # -- make run keeps it across restarts -----------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "allowed": self.allowed,
                "subscribers": [vars(s) for s in self.subscribers.values()],
                "subscriptions": [
                    {k: v for k, v in vars(s).items() if k != "results"}
                    for s in self.subscriptions.values()
                ],
            }

    def restore(self, saved: dict[str, Any]) -> None:
        with self._lock:
            self.allowed = bool(saved.get("allowed", True))
            self.subscribers = {s["id"]: Subscriber(**s) for s in saved.get("subscribers", [])}
            self.subscriptions = {
                s["id"]: Subscription(**s) for s in saved.get("subscriptions", [])
            }


def _post(url: str, body: bytes, headers: dict[str, str]) -> int | None:
    try:
        answer = requests.post(
            url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException:
        return None
    return answer.status_code


# -- the management API ---------------------------------------------------------------------------

bp = Blueprint("event_platform", __name__)


def platform() -> EventPlatform:
    return current_app.extensions["devpim_events"]  # type: ignore[no-any-return]


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(code=status, message=message), status


@bp.before_request
def authenticate() -> tuple[Response, int] | None:
    """The App's token for this PIM, and the permission checkbox, as the real platform checks."""
    pim = current_app.extensions["devpim"]
    if request.headers.get("X-PIM-URL", "").rstrip("/") != pim.pim_url:
        return _error(401, "X-PIM-URL does not name a PIM this token belongs to.")
    if request.headers.get("X-PIM-CLIENT-ID") != pim.app.client_id:
        return _error(401, "X-PIM-CLIENT-ID does not match the token.")
    checked = pim.check_bearer(f"Bearer {request.headers.get('X-PIM-TOKEN', '')}")
    if isinstance(checked, tuple):
        return _error(401, "X-PIM-TOKEN is not a valid PIM token.")
    if not platform().allowed:
        return _error(
            403,
            "This App is not allowed to use the Event Platform: tick the permission in its "
            "connection settings in the PIM.",
        )
    return None


def _https(url: Any) -> bool:
    parts = urlsplit(str(url or ""))
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)


def _check_contact(contact: Any) -> str | None:
    if not isinstance(contact, dict) or not contact.get("technical_email"):
        return "contact.technical_email is required."
    if "webhook" in contact.get("notification_channels", []):
        if not _https(contact.get("notification_webhook_url")):
            return "notification_webhook_url must be an https URL."
        if not 16 <= len(str(contact.get("notification_webhook_secret") or "")) <= 256:
            return "notification_webhook_secret must be 16 to 256 characters."
    return None


def _subscriber(subscriber_id: str) -> Subscriber | None:
    found = platform().subscribers.get(subscriber_id)
    return found if found and found.status == "active" else None


@bp.get(f"{BASE}/subscribers")
def list_subscribers() -> tuple[Response, int]:
    live = [s.public(platform().pim_url) for s in platform().subscribers.values()]
    return jsonify(live), 200


@bp.post(f"{BASE}/subscribers")
def create_subscriber() -> tuple[Response, int]:
    body = request.get_json(silent=True) or {}
    if not body.get("name"):
        return _error(400, "name is required.")
    if problem := _check_contact(body.get("contact")):
        return _error(400, problem)
    with platform()._lock:
        live = [s for s in platform().subscribers.values() if s.status == "active"]
        if len(live) >= MAX_SUBSCRIBERS:
            return _error(409, f"A PIM has at most {MAX_SUBSCRIBERS} subscribers.")
        subscriber = Subscriber(str(uuid.uuid4()), str(body["name"]), dict(body["contact"]))
        platform().subscribers[subscriber.id] = subscriber
    return jsonify(subscriber.public(platform().pim_url)), 201


@bp.route(f"{BASE}/subscribers/<subscriber_id>", methods=["GET", "PATCH", "DELETE"])
def one_subscriber(subscriber_id: str) -> tuple[Response, int]:
    subscriber = _subscriber(subscriber_id)
    if subscriber is None:
        return _error(404, "Subscriber not found.")
    if request.method == "DELETE":
        with platform()._lock:
            subscriber.status = "deleted"
            for sid in [
                s.id for s in platform().subscriptions.values() if s.subscriber_id == subscriber_id
            ]:
                del platform().subscriptions[sid]
            del platform().subscribers[subscriber_id]
        return Response(status=204), 204
    if request.method == "PATCH":
        body = request.get_json(silent=True) or {}
        if "contact" in body:
            contact = {**subscriber.contact, **(body["contact"] or {})}
            if problem := _check_contact(contact):
                return _error(400, problem)
            subscriber.contact = contact
        if body.get("name"):
            subscriber.name = str(body["name"])
    return jsonify(subscriber.public(platform().pim_url)), 200


def _check_subscription(body: dict[str, Any], *, partial: bool) -> str | None:
    events = body.get("events")
    if not partial or "events" in body:
        if not isinstance(events, list) or not events:
            return "events must be a list of event types."
    config = body.get("config")
    if not partial or "config" in body:
        if not isinstance(config, dict) or not _https(config.get("url")):
            return "config.url must be an https URL."
        secret = config.get("secret")
        if not isinstance(secret, dict) or not secret.get("primary"):
            return "config.secret.primary is required."
    if not partial and body.get("type") != "https":
        return "This local platform delivers to https subscriptions only."
    return None


@bp.route(f"{BASE}/subscribers/<subscriber_id>/subscriptions", methods=["GET", "POST"])
def subscriptions(subscriber_id: str) -> tuple[Response, int]:
    if _subscriber(subscriber_id) is None:
        return _error(404, "Subscriber not found.")
    pim_url = platform().pim_url
    mine = [s for s in platform().subscriptions.values() if s.subscriber_id == subscriber_id]
    if request.method == "GET":
        return jsonify([s.public(pim_url) for s in mine]), 200
    body = request.get_json(silent=True) or {}
    if problem := _check_subscription(body, partial=False):
        return _error(400, problem)
    if len(mine) >= MAX_SUBSCRIPTIONS:
        return _error(409, f"A subscriber has at most {MAX_SUBSCRIPTIONS} subscriptions.")
    subscription = Subscription(
        str(uuid.uuid4()), subscriber_id, list(body["events"]), dict(body["config"])
    )
    with platform()._lock:
        platform().subscriptions[subscription.id] = subscription
    return jsonify(subscription.public(pim_url)), 201


@bp.route(
    f"{BASE}/subscribers/<subscriber_id>/subscriptions/<subscription_id>",
    methods=["GET", "PATCH", "DELETE"],
)
def one_subscription(subscriber_id: str, subscription_id: str) -> tuple[Response, int]:
    subscription = platform().subscriptions.get(subscription_id)
    if subscription is None or subscription.subscriber_id != subscriber_id:
        return _error(404, "Subscription not found.")
    if request.method == "DELETE":
        with platform()._lock:
            del platform().subscriptions[subscription_id]
        return Response(status=204), 204
    if request.method == "PATCH":
        body = request.get_json(silent=True) or {}
        if problem := _check_subscription(body, partial=True):
            return _error(400, problem)
        with platform()._lock:
            if "events" in body:
                subscription.events = list(body["events"])
            if "config" in body:
                subscription.config = {**subscription.config, **body["config"]}
        if body.get("status") == "suspended":
            platform().suspend(subscription, "Suspended by the user.", by="user")
        elif body.get("status") == "active" and subscription.status == "suspended":
            platform().resume(subscription)
    return jsonify(subscription.public(platform().pim_url)), 200
