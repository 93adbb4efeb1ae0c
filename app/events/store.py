"""The events feature's tables: each PIM's subscription (secrets encrypted like tokens), and the
ids of the events already taken (the platform delivers at least once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, String, Text, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, Encryption, Unreadable, now

#: an event id is remembered this long: the platform's retries come 5, 10 and 20 minutes apart
KEEP_IDS = timedelta(hours=24)

# what the connected page says of a PIM's subscription
ACTIVE = "active"  # delivering (a new one may take minutes to start)
SUBSCRIBING = "subscribing"  # a job is creating or finding it
UNAVAILABLE = "unavailable"  # the PIM has no Event Platform, or the App may not use it
SUSPENDED = "suspended"
REVOKED = "revoked"
FAILED = "failed"  # the platform did not answer: tried again at the next connection


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


class EventStore:
    """The events feature's rows, over the App's database engine."""

    def __init__(self, engine: Engine, encryption: Encryption) -> None:
        self.engine, self.encryption = engine, encryption

    def subscription(self, pim_url: str) -> Subscription | None:
        """The PIM's subscription, or None."""
        return self._one(SubscriptionRow.pim_url == pim_url)

    def by_subscription_id(self, subscription_id: str) -> Subscription | None:
        """The subscription an event names (its CloudEvent `subject`), or None."""
        return self._one(SubscriptionRow.subscription_id == subscription_id)

    def by_subscriber_id(self, subscriber_id: str) -> Subscription | None:
        """The subscription of a subscriber (what a notification names), or None."""
        return self._one(SubscriptionRow.subscriber_id == subscriber_id)

    def set_state(self, pim_url: str, state: str, reason: str | None = None) -> None:
        """Record what became of the PIM's subscription (a row is made if there is none)."""
        with self.engine.begin() as db:
            values = {"state": state, "reason": reason, "updated_at": now()}
            moved = db.execute(
                update(SubscriptionRow).where(SubscriptionRow.pim_url == pim_url).values(**values)
            ).rowcount
            if not moved:
                try:
                    with db.begin_nested():
                        db.execute(insert(SubscriptionRow).values(pim_url=pim_url, **values))
                except IntegrityError:  # made meanwhile by another job: it says more
                    pass

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
            moved = db.execute(
                update(SubscriptionRow).where(SubscriptionRow.pim_url == pim_url).values(**values)
            ).rowcount
            if not moved:
                db.execute(insert(SubscriptionRow).values(pim_url=pim_url, **values))
            db.execute(
                update(SubscriptionRow)
                .where(SubscriptionRow.pim_url == pim_url, SubscriptionRow.subscribed_at.is_(None))
                .values(subscribed_at=now())
            )

    def event_came(self, pim_url: str) -> None:
        """A signed event came: the subscription delivers (said on the page)."""
        with self.engine.begin() as db:
            db.execute(
                update(SubscriptionRow)
                .where(SubscriptionRow.pim_url == pim_url)
                .values(last_event_at=now())
            )

    def seen(self, event_id: str) -> bool:
        """True when the App took this event already."""
        with self.engine.connect() as db:
            query = select(SeenEventRow.event_id).where(SeenEventRow.event_id == event_id)
            return db.execute(query).first() is not None

    def remember(self, event_id: str) -> None:
        """The App took this event: a later delivery of it is a duplicate."""
        try:
            with self.engine.begin() as db:
                db.execute(insert(SeenEventRow).values(event_id=event_id, received_at=now()))
        except IntegrityError:
            pass  # its twin, delivered at the same instant, was taken: one is enough

    def trim(self) -> None:
        """Forget event ids older than KEEP_IDS."""
        with self.engine.begin() as db:
            db.execute(delete(SeenEventRow).where(SeenEventRow.received_at < now() - KEEP_IDS))

    def forget(self, pim_url: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(SubscriptionRow).where(SubscriptionRow.pim_url == pim_url))

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
        )

    def _clear(self, ciphertext: str | None) -> str | None:
        if not ciphertext:
            return None
        try:
            return self.encryption.decrypt(ciphertext)
        except Unreadable:
            return None  # an old key is gone: the subscription is made again at the next connect
