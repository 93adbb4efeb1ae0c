"""The events feature's tables: each PIM's subscription (secrets encrypted like tokens), and the
ids of the events already taken (the platform delivers at least once)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, String, Table, Text, delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, Encryption, Unreadable, now, upsert, upsert_statement

#: an event id is remembered this long: the platform's retries come 5, 10 and 20 minutes apart
KEEP_IDS = timedelta(hours=24)

# what the connected page says of a PIM's subscription
ACTIVE = "active"  # delivering (a new one may take minutes to start)
SUBSCRIBING = "subscribing"  # a job is creating or finding it
UNAVAILABLE = "unavailable"  # the PIM has no Event Platform, or the App may not use it
SUSPENDED = "suspended"
REVOKED = "revoked"
FAILED = "failed"  # the platform did not answer: tried again at the next connection


CACHE_SECONDS = 30.0  # the webhook reads a subscription's row at most this often
MAX_CACHED = 1000


class Duplicate(Exception):
    """The event was taken before (the platform delivers at least once)."""


class SubscriptionRow(Base):
    """The App's subscriber and https subscription in one PIM's Event Platform."""

    __tablename__ = "event_subscriptions"
    __table_args__ = (Index("ix_event_subscriptions_id", "subscription_id", unique=True),)

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # what the page says of the state
    subscriber_id: Mapped[str | None] = mapped_column(String(64))
    subscription_id: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    primary_secret: Mapped[str | None] = mapped_column(Text)  # encrypted
    secondary_secret: Mapped[str | None] = mapped_column(Text)  # encrypted: the one before
    notification_secret: Mapped[str | None] = mapped_column(Text)  # encrypted
    subscribed_at: Mapped[datetime | None]
    last_event_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


_subscriptions: Table = SubscriptionRow.__table__  # type: ignore[assignment]


class SeenEventRow(Base):
    """An event the App took (its CloudEvent id)."""

    __tablename__ = "event_ids"
    __table_args__ = (Index("ix_event_ids_received", "received_at"),)

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime]


@dataclass(frozen=True)
class Subscription:
    """A PIM's subscription as the App knows it, its secrets in clear."""

    pim_url: str
    state: str
    reason: str | None
    subscriber_id: str | None
    subscription_id: str | None
    webhook_url: str | None
    secrets: tuple[str, ...]  # the primary first, then the one it replaced
    notification_secret: str | None
    subscribed_at: datetime | None
    last_event_at: datetime | None
    updated_at: datetime | None = None  # when the state was last set


class EventStore:
    """The events feature's rows, over the App's database engine."""

    def __init__(self, engine: Engine, encryption: Encryption) -> None:
        self.engine, self.encryption = engine, encryption
        # the webhook's lookups, kept a little while (a secret decrypted once, not per event);
        # a signature that the kept secrets refuse reads the row again (see `fresh`)
        self._cache: dict[str, tuple[float, Subscription | None]] = {}
        self._cache_lock = threading.Lock()
        self._take = upsert_statement(
            engine.dialect.name,
            SeenEventRow.__table__,  # type: ignore[arg-type]
            key=("event_id",),
            columns=("event_id",),  # a duplicate changes nothing: DO NOTHING
        )

    def subscription(self, pim_url: str) -> Subscription | None:
        """The PIM's subscription, or None."""
        return self._one(SubscriptionRow.pim_url == pim_url)

    def by_subscription_id(
        self, subscription_id: str, *, fresh: bool = False
    ) -> Subscription | None:
        """The subscription an event names (its CloudEvent `subject`), or None; as read up to
        CACHE_SECONDS ago unless `fresh`."""
        moment = time.monotonic()
        with self._cache_lock:
            kept = self._cache.get(subscription_id)
        if kept and not fresh and kept[0] > moment:
            return kept[1]
        found = self._one(SubscriptionRow.subscription_id == subscription_id)
        with self._cache_lock:
            if len(self._cache) > MAX_CACHED:  # ids a forger made up never fill the memory
                self._cache.clear()
            self._cache[subscription_id] = (moment + CACHE_SECONDS, found)
        return found

    def by_subscriber_id(self, subscriber_id: str) -> Subscription | None:
        """The subscription of a subscriber (what a notification names), or None."""
        return self._one(SubscriptionRow.subscriber_id == subscriber_id)

    def live_pims(self) -> list[str]:
        """The PIMs whose subscription the App holds as active."""
        with self.engine.connect() as db:
            query = select(SubscriptionRow.pim_url).where(SubscriptionRow.state == ACTIVE)
            return [str(p) for p in db.execute(query).scalars()]

    def set_state(self, pim_url: str, state: str, reason: str | None = None) -> None:
        """Record what became of the PIM's subscription (a row is made if there is none)."""
        row = {"pim_url": pim_url, "state": state, "reason": reason, "updated_at": now()}
        with self.engine.begin() as db:
            upsert(db, _subscriptions, row, key=("pim_url",))
        self._forget_cached()

    def keep_secrets(
        self, pim_url: str, secrets: tuple[str, ...], notification_secret: str
    ) -> None:
        """Keep the secrets the App is about to give the platform, before it gives them: a
        subscription that fails half way never leaves the platform signing with a secret the
        App does not hold. The state stays what it is (a row is made, subscribing, if none)."""
        primary, secondary = secrets[0], (secrets[1] if len(secrets) > 1 else None)
        values = {
            "primary_secret": self.encryption.encrypt(primary),
            "secondary_secret": self.encryption.encrypt(secondary) if secondary else None,
            "notification_secret": self.encryption.encrypt(notification_secret),
        }
        with self.engine.begin() as db:
            moved = db.execute(
                update(SubscriptionRow).where(SubscriptionRow.pim_url == pim_url).values(values)
            ).rowcount
            if not moved:
                row = {"pim_url": pim_url, "state": SUBSCRIBING, "updated_at": now(), **values}
                upsert(db, _subscriptions, row, key=("pim_url",))
        self._forget_cached()

    def save(
        self,
        pim_url: str,
        *,
        subscriber_id: str,
        subscription_id: str,
        webhook_url: str,
        secrets: tuple[str, ...],
        notification_secret: str,
    ) -> None:
        """The subscription is there and delivers to `webhook_url`, signed with `secrets`."""
        primary, secondary = secrets[0], (secrets[1] if len(secrets) > 1 else None)
        values = {
            "state": ACTIVE,
            "reason": None,
            "subscriber_id": subscriber_id,
            "subscription_id": subscription_id,
            "webhook_url": webhook_url,
            "primary_secret": self.encryption.encrypt(primary),
            "secondary_secret": self.encryption.encrypt(secondary) if secondary else None,
            "notification_secret": self.encryption.encrypt(notification_secret),
            "updated_at": now(),
        }
        with self.engine.begin() as db:
            # another PIM's row that named this subscription id is stale
            db.execute(
                delete(SubscriptionRow).where(
                    SubscriptionRow.subscription_id == subscription_id,
                    SubscriptionRow.pim_url != pim_url,
                )
            )
            upsert(db, _subscriptions, {"pim_url": pim_url, **values}, key=("pim_url",))
            db.execute(  # the first time only: a subscription made again keeps its date
                update(SubscriptionRow)
                .where(SubscriptionRow.pim_url == pim_url, SubscriptionRow.subscribed_at.is_(None))
                .values(subscribed_at=now())
            )
        self._forget_cached()

    def event_came(self, subscription: Subscription) -> None:
        """A signed event came: the subscription delivers (said on the page)."""
        moment = now()
        with self.engine.begin() as db:
            db.execute(
                update(SubscriptionRow)
                .where(SubscriptionRow.pim_url == subscription.pim_url)
                .values(last_event_at=moment)
            )
        if subscription.subscription_id:
            with self._cache_lock:
                self._cache.pop(subscription.subscription_id, None)

    def take(self, db: Connection, event_id: str) -> None:
        """Record that the App takes this event, in the caller's transaction; Duplicate (which
        undoes the transaction) when it was taken before."""
        if not db.execute(self._take, {"event_id": event_id, "received_at": now()}).rowcount:
            raise Duplicate(event_id)

    def remember_once(self, event_id: str) -> None:
        """Take an event that needs no other write; Duplicate when it was taken before."""
        with self.engine.begin() as db:
            self.take(db, event_id)

    def release(self, event_id: str) -> None:
        """Forget that the App took this event: its next delivery is taken in full."""
        with self.engine.begin() as db:
            db.execute(delete(SeenEventRow).where(SeenEventRow.event_id == event_id))

    def trim(self) -> None:
        """Forget event ids older than KEEP_IDS."""
        with self.engine.begin() as db:
            db.execute(delete(SeenEventRow).where(SeenEventRow.received_at < now() - KEEP_IDS))

    def forget(self, pim_url: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(SubscriptionRow).where(SubscriptionRow.pim_url == pim_url))
        self._forget_cached()

    def _forget_cached(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def _one(self, where: object) -> Subscription | None:
        with self.engine.connect() as db:
            row = db.execute(select(SubscriptionRow).where(where)).first()  # type: ignore[arg-type]
        if row is None:
            return None
        r = row._mapping
        return Subscription(
            pim_url=r["pim_url"],
            state=r["state"],
            reason=r["reason"],
            subscriber_id=r["subscriber_id"],
            subscription_id=r["subscription_id"],
            webhook_url=r["webhook_url"],
            secrets=tuple(
                s
                for s in (self._clear(r["primary_secret"]), self._clear(r["secondary_secret"]))
                if s
            ),
            notification_secret=self._clear(r["notification_secret"]),
            subscribed_at=r["subscribed_at"],
            last_event_at=r["last_event_at"],
            updated_at=r["updated_at"],
        )

    def _clear(self, ciphertext: str | None) -> str | None:
        if not ciphertext:
            return None
        try:
            return self.encryption.decrypt(ciphertext)
        except Unreadable:
            return None  # an old key is gone: the subscription is made again at the next connect
