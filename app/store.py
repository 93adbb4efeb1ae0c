"""What the activation core keeps: connected PIMs, their users, browser sessions, spent states.

Access tokens are encrypted (`db.Encryption`) before they reach the database. Authorization
states and session ids are stored as hashes; a state is recorded under a unique key when a
callback spends it, so it works once even across processes and replays.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, Database, Encryption, Unreadable, now, upsert_statement
from .errors import TokenUnreadable
from .grants import PasswordGrants
from .identity import User

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)


class ConnectionRow(Base):
    """One connected PIM: its App token (encrypted), granted scopes and who connected it."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    pim_url: Mapped[str] = mapped_column(String(2048), unique=True)
    access_token: Mapped[str] = mapped_column(Text)  # Fernet ciphertext, never the token
    scopes: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    connected_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class UserRow(Base):
    """A PIM user who connected the App, identified by the id_token's `sub` within that PIM."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("pim_url", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pim_url: Mapped[str] = mapped_column(String(2048))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    last_login_at: Mapped[datetime]


class SpentStateRow(Base):
    """An authorization state a callback has used: its hash, so that it never works twice.

    Nothing is written when a state is issued (/activate takes no database write from strangers):
    the state and its PIM travel in the signed session cookie, and are recorded here when spent.
    """

    __tablename__ = "spent_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    spent_at: Mapped[datetime] = mapped_column(index=True)


class BrowserSessionRow(Base):
    """A signed-in browser: the hash of the id in its cookie, its PIM and user, until when.

    The cookie alone cannot be taken back; this row can: sign-out deletes it, and a copy of the
    cookie made before then no longer opens the connected page.
    """

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    pim_url: Mapped[str] = mapped_column(String(2048))
    user_sub: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(index=True)


# The statements of the flow's hot path, built once on the plain tables: SQLAlchemy then skips
# the ORM and most of its statement-building work on every activation and callback.
_spent, _sessions, _connections, _users = (
    Base.metadata.tables[row.__tablename__]
    for row in (SpentStateRow, BrowserSessionRow, ConnectionRow, UserRow)
)
_SPEND_STATE = insert(_spent)
_PRUNE_SPENT = delete(_spent).where(_spent.c.spent_at < bindparam("b_oldest"))
_ADD_SESSION = insert(_sessions)
_PRUNE_SESSIONS = delete(_sessions).where(_sessions.c.expires_at < bindparam("b_now"))
_SESSION_PIM = select(_sessions.c.pim_url).where(
    _sessions.c.id_hash == bindparam("b_hash"), _sessions.c.expires_at >= bindparam("b_now")
)
_END_SESSION = delete(_sessions).where(_sessions.c.id_hash == bindparam("b_hash"))
_CONNECTION = select(_connections, _users.c.sub, _users.c.name, _users.c.email).outerjoin(
    _users, _connections.c.user_id == _users.c.id
)


@dataclass(frozen=True)
class Connection:
    """A PIM the App is connected to (its activation), token decrypted."""

    pim_url: str
    access_token: str
    scopes: tuple[str, ...]
    connected_at: datetime
    revoked: bool
    user: User | None

    def __repr__(self) -> str:  # never print the token
        return (
            f"Connection(pim_url={self.pim_url!r}, scopes={self.scopes!r}, revoked={self.revoked})"
        )


def _hash(secret: str) -> str:
    # only a hash is stored: a database reader can replay neither a state nor a session id
    return hashlib.sha256(secret.encode()).hexdigest()


def _one_in_256(hashed: str) -> bool:
    # housekeeping on about one write in 256 (chosen by the random hash): stale rows stay a
    # few minutes longer, and the other 255 writes touch one row only
    return hashed.startswith("00")


class Store:
    """The core's tables: connections, users, browser sessions, spent states (and, through
    `grants`, the API connections' password grants)."""

    def __init__(self, database: Database, encryption: Encryption) -> None:
        self.database = database
        self.engine = database.engine
        self.encryption = encryption
        dialect = self.engine.dialect.name
        self._save_user = upsert_statement(
            dialect,
            _users,
            key=("pim_url", "sub"),
            columns=("pim_url", "sub", "name", "email", "last_login_at"),
            returning=("id",),
        )
        self._save_connection = upsert_statement(
            dialect,
            _connections,
            key=("pim_url",),
            columns=("pim_url", "access_token", "scopes", "user_id", "connected_at", "revoked_at"),
            # opening the App again from the PIM is no new connection: it keeps its date (one
            # that was revoked takes the new date)
            keep_when={"connected_at": _connections.c.revoked_at.is_(None)},
            returning=("connected_at",),
        )
        self.grants = PasswordGrants(self.engine, encryption)

    # -- authorization states ------------------------------------------------------------------

    def spend_state(self, state: str) -> bool:
        """Record that a callback used `state`: True the first time, False ever after."""
        moment = now()
        state_hash = _hash(state)
        try:
            with self.engine.begin() as db:
                if _one_in_256(state_hash):
                    # older states are refused by their age in the cookie: their rows can go
                    db.execute(_PRUNE_SPENT, {"b_oldest": moment - STATE_TTL})
                db.execute(_SPEND_STATE, {"state_hash": state_hash, "spent_at": moment})
        except IntegrityError:
            return False
        return True

    # -- browser sessions ----------------------------------------------------------------------

    def open_session(
        self, session_id: str, pim_url: str, user_sub: str | None, lifetime: timedelta
    ) -> None:
        """Remember a signed-in browser (by the hash of its session id) for `lifetime`."""
        moment = now()
        id_hash = _hash(session_id)
        with self.engine.begin() as db:
            if _one_in_256(id_hash):
                db.execute(_PRUNE_SESSIONS, {"b_now": moment})
            db.execute(
                _ADD_SESSION,
                {
                    "id_hash": id_hash,
                    "pim_url": pim_url,
                    "user_sub": user_sub,
                    "expires_at": moment + lifetime,
                },
            )

    def session_pim(self, session_id: str) -> str | None:
        """The PIM of a signed-in browser; None once it signed out or its session expired."""
        with self.engine.connect() as db:
            row = db.execute(_SESSION_PIM, {"b_hash": _hash(session_id), "b_now": now()}).first()
            return str(row[0]) if row else None

    def close_session(self, session_id: str) -> None:
        """Sign a browser out for good: its cookie, even a copy, opens nothing any more."""
        with self.engine.begin() as db:
            db.execute(_END_SESSION, {"b_hash": _hash(session_id)})

    def close_sessions_of(self, pim_url: str) -> None:
        """Sign out every browser of `pim_url` (the App forgot that PIM)."""
        with self.engine.begin() as db:
            db.execute(delete(_sessions).where(_sessions.c.pim_url == pim_url))

    # -- connections ---------------------------------------------------------------------------

    def save_connection(
        self, pim_url: str, access_token: str, scopes: Sequence[str], user: User | None
    ) -> Connection:
        """Store (or replace) the connection to `pim_url`; the token is encrypted first."""
        moment = now()
        # plain statements, not the ORM unit of work: this runs in the 30 s of a code
        with self.engine.begin() as db:
            user_id = None
            if user:
                user_row = {
                    "pim_url": pim_url,
                    "sub": user.sub,
                    "name": user.name,
                    "email": user.email,
                    "last_login_at": moment,
                }
                user_id = db.execute(self._save_user, user_row).scalar_one()
            connected_at = db.execute(
                self._save_connection,
                {
                    "pim_url": pim_url,
                    "access_token": self.encryption.encrypt(access_token),
                    "scopes": " ".join(scopes),
                    "user_id": user_id,
                    "connected_at": moment,
                    "revoked_at": None,
                },
            ).scalar_one()
        log.info("connection saved pim=%s scopes=%s", pim_url, " ".join(scopes))
        return Connection(pim_url, access_token, tuple(scopes), connected_at, False, user)

    def is_connected(self, pim_url: str) -> bool:
        """True when a connection to `pim_url` is stored (revoked or not); nothing decrypted."""
        return self.is_revoked(pim_url) is not None

    def is_revoked(self, pim_url: str) -> bool | None:
        """Whether the PIM revoked the App's token; None when no connection to it is stored.
        Nothing is decrypted: for pages that only need to know."""
        with self.engine.connect() as db:
            query = select(_connections.c.revoked_at).where(_connections.c.pim_url == pim_url)
            row = db.execute(query).first()
        return None if row is None else row.revoked_at is not None

    def connection(self, pim_url: str) -> Connection | None:
        """The connection to `pim_url`, token decrypted, or None."""
        with self.engine.connect() as db:
            row = db.execute(_CONNECTION.where(_connections.c.pim_url == pim_url)).first()
        return self._to_connection(row._mapping) if row else None

    def connections(self) -> list[Connection]:
        """Every stored connection, by PIM URL."""
        with self.engine.connect() as db:
            rows = db.execute(_CONNECTION.order_by(_connections.c.pim_url)).all()
        return [self._to_connection(row._mapping) for row in rows]

    def user(self, pim_url: str, sub: str) -> User | None:
        """The user `sub` of `pim_url`, as last seen in an id_token."""
        with self.engine.connect() as db:
            row = db.execute(
                select(_users.c.sub, _users.c.name, _users.c.email).where(
                    _users.c.pim_url == pim_url, _users.c.sub == sub
                )
            ).first()
        return User(row.sub, row.name, row.email) if row else None

    def mark_revoked(self, pim_url: str) -> bool:
        """Record that the PIM refused the token (the App was disconnected there); True when
        this call is the one that noticed."""
        with self.engine.begin() as db:
            changed = db.execute(
                update(_connections)
                .where(_connections.c.pim_url == pim_url, _connections.c.revoked_at.is_(None))
                .values(revoked_at=now())
            ).rowcount
        if changed:
            log.info("connection marked revoked pim=%s", pim_url)
        return bool(changed)

    def forget(self, pim_url: str) -> bool:
        """Delete the connection to `pim_url` and its users; True if there was one."""
        with self.engine.begin() as db:
            deleted = db.execute(
                delete(_connections).where(_connections.c.pim_url == pim_url)
            ).rowcount
            db.execute(delete(_users).where(_users.c.pim_url == pim_url))
        self.grants.forget(pim_url)
        return bool(deleted)

    def rotate_keys(self) -> int:
        """Re-encrypt every stored token with the first key; return how many were rewritten."""
        count = 0
        with self.engine.begin() as db:
            for pim_url, ciphertext in db.execute(
                select(_connections.c.pim_url, _connections.c.access_token)
            ).all():
                db.execute(
                    update(_connections)
                    .where(_connections.c.pim_url == pim_url)
                    .values(access_token=self._rotate(ciphertext, pim_url))
                )
                count += 1
        return count + self.grants.rotate()

    def _decrypt(self, ciphertext: str, pim_url: str) -> str:
        try:
            return self.encryption.decrypt(ciphertext)
        except Unreadable:
            raise unreadable(pim_url) from None

    def _rotate(self, ciphertext: str, pim_url: str) -> str:
        try:
            return self.encryption.rotate(ciphertext)
        except Unreadable:
            raise unreadable(pim_url) from None

    def _to_connection(self, row: Any) -> Connection:
        user = User(row["sub"], row["name"], row["email"]) if row["sub"] is not None else None
        return Connection(
            pim_url=row["pim_url"],
            access_token=self._decrypt(row["access_token"], row["pim_url"]),
            scopes=tuple(row["scopes"].split()),
            connected_at=row["connected_at"],
            revoked=row["revoked_at"] is not None,
            user=user,
        )


def unreadable(pim_url: str) -> TokenUnreadable:
    """The error for a token that no key of the App decrypts any more."""
    return TokenUnreadable(
        f"The App's token for {pim_url} was encrypted with a key the App no longer has "
        "(TOKEN_ENCRYPTION_KEY or SECRET_KEY changed). Connect again from the PIM to store a new "
        "one, or list the old key after the new one in TOKEN_ENCRYPTION_KEY.",
        pim_url=pim_url,
    )
