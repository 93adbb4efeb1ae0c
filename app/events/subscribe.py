"""Subscribing the App to a PIM's events, and undoing it: find what exists, make what is missing.

Run by a worker after a connection (subscribe), by `akeneo rotate-event-secret` (rotate) and
when the App forgets a PIM (unsubscribe). The platform's answers become what the connected page
says: live, unavailable (and why), suspended, or failed (the platform did not answer).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from ..akeneo import AkeneoClient
from ..errors import AppError, PimError, PimHttpError
from .platform import EVENTS, EventPlatform
from .settings import EventSettings
from .store import ACTIVE, FAILED, REVOKED, SUSPENDED, UNAVAILABLE, EventStore, Subscription

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/events"
NOTIFICATIONS_PATH = "/events/notifications"
SUBSCRIBER_NAME = "akeneo-flask-app"  # what the App names its subscriber in each PIM

NOT_ALLOWED = (
    "The PIM does not let the App subscribe to its events. In the PIM, open Connect > Connected "
    "apps > this App > Connection settings, tick the Event Platform permission, then press "
    "Subscribe again here. (Community Edition and PaaS PIMs have no Event Platform: the sync "
    "keeps the copy, every 15 minutes.)"
)


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters: within the platform's 16 to 256


def webhook_base(settings: EventSettings, base: str | None) -> str | None:
    """The App's public base (`features.public_base()`: AKENEO_PUBLIC_URL) if the platform can
    deliver there: https, or http for a local platform; None otherwise."""
    if base and (base.startswith("https://") or settings.http_allowed):
        return base
    return None


def subscribe(
    store: EventStore,
    client: AkeneoClient,
    settings: EventSettings,
    pim_url: str,
    token: str,
    base: str | None,
    user_email: str | None = None,
    on_gap: Callable[[], None] | None = None,
) -> str:
    """Make sure the PIM delivers the copy's events to the App; the state it ends in.

    `on_gap()` is called when events were lost (a subscription suspended or revoked is made
    again): the copy must read what changed meanwhile."""
    if base is None:
        reason = (
            "The App has no public https address for the Event Platform to deliver to: set "
            "AKENEO_PUBLIC_URL to it (your ngrok URL), restart the App, then press Subscribe "
            "again."
        )
        store.set_state(pim_url, UNAVAILABLE, reason)
        return UNAVAILABLE
    contact = settings.contact_email or user_email
    if contact is None:
        reason = (
            "The Event Platform needs an email to write to about the subscription, and the user "
            "who connected the App shared none: set AKENEO_EVENTS_CONTACT_EMAIL, restart the "
            "App, then press Subscribe again."
        )
        store.set_state(pim_url, UNAVAILABLE, reason)
        return UNAVAILABLE
    platform = EventPlatform(client, settings.platform_for(pim_url), pim_url, token)
    known = store.subscription(pim_url)
    try:
        state, gap = _subscribe(store, platform, known, pim_url, base, contact)
    except PimHttpError as error:
        if error.pim_status in (401, 403, 404):
            log.warning("events unavailable pim=%s status=%s", pim_url, error.pim_status)
            store.set_state(pim_url, UNAVAILABLE, NOT_ALLOWED)
            return UNAVAILABLE
        store.set_state(pim_url, FAILED, f"The Event Platform refused: {error.message}")
        return FAILED
    except AppError as error:
        store.set_state(pim_url, FAILED, f"{error.message} Connect again to retry.")
        return FAILED
    if gap and on_gap:  # the subscription was suspended or revoked: its events were lost
        on_gap()
    return state


def _subscribe(
    store: EventStore,
    platform: EventPlatform,
    known: Subscription | None,
    pim_url: str,
    base: str,
    contact: str,
) -> tuple[str, bool]:
    # the secrets the App holds are the ones it gives: kept first, so a failure anywhere below
    # leaves the platform signing with secrets the App knows (the next try sends the same)
    secrets_now = known.secrets if known and known.secrets else (new_secret(),)
    notification_secret = (known.notification_secret if known else None) or new_secret()
    store.keep_secrets(pim_url, secrets_now, notification_secret)
    notifications = {
        "technical_email": contact,
        "notification_channels": ["webhook"],
        "notification_webhook_url": base + NOTIFICATIONS_PATH,
        "notification_webhook_secret": notification_secret,
    }
    subscriber_id = _own_subscriber(platform, known, notifications)

    url = base + WEBHOOK_PATH
    config = {"url": url, "secret": _secret_config(secrets_now)}
    found = [s for s in platform.subscriptions(subscriber_id) if s.get("type") == "https"]
    ours = next((s for s in found if _url_of(s) == url), found[0] if found else None)
    for other in found:
        if other is not ours:
            platform.delete_subscription(subscriber_id, str(other["id"]))
    gap = ours is not None and ours.get("status") in (REVOKED, SUSPENDED, "deleted")
    if gap and ours is not None:
        # made again: a suspended subscription lost its events anyway, and a new one delivers
        platform.delete_subscription(subscriber_id, str(ours["id"]))
        ours = None
    if ours is None:
        subscription_id = platform.create_subscription(
            subscriber_id,
            {"source": "pim", "subject": platform.pim_url, "events": list(EVENTS)}
            | {"type": "https", "config": config},
        )["id"]
    else:
        subscription_id = str(ours["id"])
        # the App's address may have changed (a new ngrok URL), and only it knows its secrets
        platform.update_subscription(
            subscriber_id, subscription_id, {"events": list(EVENTS), "config": config}
        )
    store.save(
        pim_url,
        subscriber_id=subscriber_id,
        subscription_id=subscription_id,
        webhook_url=url,
        secrets=secrets_now,
        notification_secret=notification_secret,
    )
    log.info("events subscribed pim=%s subscription=%s", pim_url, subscription_id)
    return ACTIVE, gap


def _own_subscriber(
    platform: EventPlatform, known: Subscription | None, notifications: dict[str, Any]
) -> str:
    """The id of the App's one subscriber in the PIM, made if there is none.

    The platform lists only the subscribers of the App's own connection, so each one listed is
    the App's, whatever its name: the one the App knew (else the first live one) is kept,
    renamed and given the App's contact; the others are deleted, since a second subscriber with
    live subscriptions doubles every delivery (and the platform allows 20 per PIM)."""
    listed = [s for s in platform.subscribers() if s.get("id")]
    live = [s for s in listed if s.get("status", ACTIVE) == ACTIVE]
    live.sort(key=lambda s: str(s["id"]) != (known.subscriber_id if known else None))
    kept = live[0] if live else None
    for other in listed:  # revoked ones, and any twin
        if other is not kept:
            platform.delete_subscriber(str(other["id"]))
    body = {"name": SUBSCRIBER_NAME, "contact": notifications}
    if kept is None:
        made = platform.create_subscriber(body).get("id")
        if not made:
            raise PimError("The Event Platform made a subscriber but gave no id.")
        return str(made)
    platform.update_subscriber(str(kept["id"]), body)
    return str(kept["id"])


def platform_status(
    store: EventStore, client: AkeneoClient, settings: EventSettings, pim_url: str, token: str
) -> str | None:
    """How the platform says the App's subscription in the PIM is (active, suspended, revoked;
    "missing" when it has none of that id); None when the App knows none or the platform did
    not answer."""
    known = store.subscription(pim_url)
    if known is None or not known.subscriber_id or not known.subscription_id:
        return None
    platform = EventPlatform(client, settings.platform_for(pim_url), pim_url, token)
    try:
        found = platform.subscription(known.subscriber_id, known.subscription_id)
    except PimHttpError as error:
        return "missing" if error.pim_status == 404 else None
    except AppError:
        return None
    return str(found.get("status") or ACTIVE)


def rotate(
    store: EventStore, client: AkeneoClient, settings: EventSettings, pim_url: str, token: str
) -> None:
    """A new primary secret; the old one becomes the secondary and still verifies until the
    platform signs with the new one. AppError when the platform refused (nothing changed)."""
    known = store.subscription(pim_url)
    if known is None or not known.subscription_id or not known.subscriber_id:
        raise AppError(f"The App has no event subscription in {pim_url}.")
    rotated = (new_secret(), *known.secrets[:1])
    platform = EventPlatform(client, settings.platform_for(pim_url), pim_url, token)
    platform.update_subscription(
        known.subscriber_id,
        known.subscription_id,
        {"config": {"url": known.webhook_url, "secret": _secret_config(rotated)}},
    )
    store.save(
        pim_url,
        subscriber_id=known.subscriber_id,
        subscription_id=known.subscription_id,
        webhook_url=known.webhook_url or "",
        secrets=rotated,
        notification_secret=known.notification_secret or new_secret(),
    )


def unsubscribe(
    store: EventStore,
    client: AkeneoClient,
    settings: EventSettings,
    pim_url: str,
    token: str | None,
) -> None:
    """Delete the App's subscriber in the PIM (and its subscription with it), then the row.
    A platform that refuses (the App was removed there: all is revoked already) is only logged."""
    known = store.subscription(pim_url)
    if known and known.subscriber_id and token:
        platform = EventPlatform(client, settings.platform_for(pim_url), pim_url, token)
        try:
            platform.delete_subscriber(known.subscriber_id)
        except AppError as error:
            log.warning("event subscriber not deleted pim=%s reason=%s", pim_url, error.message)
    store.forget(pim_url)


def mark_revoked(store: EventStore, pim_url: str) -> None:
    """The App was disconnected in the PIM: the platform revoked the subscription with it."""
    if store.subscription(pim_url):
        store.set_state(pim_url, REVOKED, "The App was disconnected in the PIM: connect it again.")


def _secret_config(secrets_now: tuple[str, ...]) -> dict[str, str]:
    config = {"primary": secrets_now[0]}
    if len(secrets_now) > 1:
        config["secondary"] = secrets_now[1]
    return config


def _url_of(subscription: dict[str, Any]) -> str | None:
    config = subscription.get("config")
    return config.get("url") if isinstance(config, dict) else None
