"""Where the App keeps what must outlive a request: connections (one per PIM), users, and states.

SQLite by default, PostgreSQL (or any SQLAlchemy database) through DATABASE_URL. Access tokens are
encrypted with Fernet before they reach the database; the first key encrypts, every key decrypts,
so keys can be rotated without losing connections. Authorization states are stored as hashes and
consumed with one conditional UPDATE, so a state works once even across processes and replays.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import (
    DateTime,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .identity import User

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)


class Base(DeclarativeBase):
    """Declarative base of the App's tables."""


class ConnectionRow(Base):
    """One connected PIM: its App token (encrypted), granted scopes and who connected it."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    pim_url: Mapped[str] = mapped_column(String(2048), unique=True)
    access_token: Mapped[str] = mapped_column(Text)  # Fernet ciphertext, never the token
    scopes: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    connected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserRow(Base):
    """A PIM user who connected the App, identified by the id_token's `sub` within that PIM."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("pim_url", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pim_url: Mapped[str] = mapped_column(String(2048))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    last_login_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StateRow(Base):
    """An authorization request in flight: the hash of its `state`, for which PIM, and when."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    pim_url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConnectionTokenRow(Base):
    """The current tokens of a connection (password grant), encrypted like App tokens."""

    __tablename__ = "connection_tokens"

    key: Mapped[str] = mapped_column(String(2400), primary_key=True)  # pim|client id|username
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[float]


# The statements of the flow's hot path, built once on the plain tables: SQLAlchemy then skips
# the ORM and most of its statement-building work on every activation and callback.
_states, _connections, _users = (
    Base.metadata.tables[row.__tablename__] for row in (StateRow, ConnectionRow, UserRow)
)
_ADD_STATE = insert(_states)
_PRUNE_STATES = delete(_states).where(_states.c.created_at < bindparam("b_oldest"))
_CONSUME_STATE = (
    update(_states)
    .where(
        _states.c.state_hash == bindparam("b_hash"),
        _states.c.pim_url == bindparam("b_pim_url"),
        _states.c.consumed_at.is_(None),
        _states.c.created_at >= bindparam("b_oldest"),
    )
    .values(consumed_at=bindparam("b_now"))
)
_UPDATE_CONNECTION = (
    update(_connections)
    .where(_connections.c.pim_url == bindparam("b_pim_url"))
    .returning(_connections.c.id)
)
_INSERT_CONNECTION = insert(_connections).returning(_connections.c.id)
_UPDATE_USER = (
    update(_users)
    .where(_users.c.pim_url == bindparam("b_pim_url"), _users.c.sub == bindparam("b_sub"))
    .returning(_users.c.id)
)
_INSERT_USER = insert(_users).returning(_users.c.id)


@dataclass(frozen=True)
class ConnectionTokens:
    """A connection's access token, its refresh token and when it expires (epoch seconds)."""

    access_token: str
    refresh_token: str | None
    expires_at: float

    def __repr__(self) -> str:
        return f"ConnectionTokens(expires_at={self.expires_at})"


@dataclass(frozen=True)
class Connection:
    """A stored connection, token decrypted, as the rest of the App sees it."""

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


def _now() -> datetime:
    return datetime.now(UTC)


def _hash_state(state: str) -> str:
    # only a hash is stored: a database reader cannot replay a pending state
    return hashlib.sha256(state.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for what was stored as UTC
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Store:
    """The App's database: connections, users and authorization states."""

    def __init__(self, database_url: str, encryption_keys: Sequence[str]) -> None:
        self.engine = _make_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._fernet = MultiFernet([Fernet(key) for key in encryption_keys])

    def create_schema(self) -> None:
        """Create missing tables; safe when several processes start at once."""
        with self.engine.begin() as db:
            if db.dialect.name == "postgresql":
                # one process creates, the others wait here and then find the tables
                db.execute(text("SELECT pg_advisory_xact_lock(7165402541)"))
            try:
                Base.metadata.create_all(db)
            except (OperationalError, ProgrammingError, IntegrityError) as error:
                if "already exists" not in str(error):
                    raise
                log.info("schema created by another process meanwhile")
        # no pooled connection may outlive this call into forked workers (gunicorn --preload)
        self.engine.dispose()

    def close(self) -> None:
        """Close the pooled database connections (at shutdown, or when a test is done)."""
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as db:
            db.execute(text("SELECT 1"))

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- authorization states ------------------------------------------------------------------

    def add_state(self, state: str, pim_url: str) -> None:
        """Remember a state issued for `pim_url`, and forget the ones too old to be used."""
        now = _now()
        state_hash = _hash_state(state)
        with self.engine.begin() as db:
            # prune on about one activation in 256 (chosen by the random hash): stale rows stay a
            # few minutes longer, and the other 255 activations write one row only
            if state_hash.startswith("00"):
                db.execute(_PRUNE_STATES, {"b_oldest": now - STATE_TTL})
            db.execute(
                _ADD_STATE, {"state_hash": state_hash, "pim_url": pim_url, "created_at": now}
            )

    def consume_state(self, state: str, pim_url: str) -> bool:
        """Use up the state: True only the first time, in time, for the PIM it was issued for."""
        now = _now()
        params = {
            "b_hash": _hash_state(state),
            "b_pim_url": pim_url,
            "b_oldest": now - STATE_TTL,
            "b_now": now,
        }
        with self.engine.begin() as db:
            return db.execute(_CONSUME_STATE, params).rowcount == 1

    # -- connections ---------------------------------------------------------------------------

    def save_connection(
        self, pim_url: str, access_token: str, scopes: Sequence[str], user: User | None
    ) -> Connection:
        """Store (or replace) the connection to `pim_url`; the token is encrypted first."""
        now = _now()
        values: dict[str, Any] = {
            "access_token": self._encrypt(access_token),
            "scopes": " ".join(scopes),
            "connected_at": now,
            "revoked_at": None,
        }
        for attempt in (1, 2):
            try:
                # plain statements, not the ORM unit of work: this runs in the 30 s of a code
                with self.engine.begin() as db:
                    if user:
                        user_row = {
                            "pim_url": pim_url,
                            "sub": user.sub,
                            "name": user.name,
                            "email": user.email,
                            "last_login_at": now,
                        }
                        values["user_id"] = _update_or_insert(
                            db,
                            _UPDATE_USER,
                            _INSERT_USER,
                            {"b_pim_url": pim_url, "b_sub": user.sub},
                            user_row,
                        )
                    _update_or_insert(
                        db,
                        _UPDATE_CONNECTION,
                        _INSERT_CONNECTION,
                        {"b_pim_url": pim_url},
                        {"pim_url": pim_url, **values},
                    )
                break
            except IntegrityError:
                # two callbacks for one new PIM at once: the other insert won, update it instead
                if attempt == 2:
                    raise
        log.info("connection saved pim=%s scopes=%s", pim_url, " ".join(scopes))
        return Connection(pim_url, access_token, tuple(scopes), now, False, user)

    def connection(self, pim_url: str) -> Connection | None:
        """The connection to `pim_url`, token decrypted, or None."""
        with self._session() as db:
            row = db.scalar(select(ConnectionRow).where(ConnectionRow.pim_url == pim_url))
            return self._to_connection(db, row) if row else None

    def user(self, pim_url: str, sub: str) -> User | None:
        """The user `sub` of `pim_url`, as last seen in an id_token."""
        with self._session() as db:
            row = db.scalar(select(UserRow).where(UserRow.pim_url == pim_url, UserRow.sub == sub))
            return User(row.sub, row.name, row.email) if row else None

    def connections(self) -> list[Connection]:
        """Every stored connection, by PIM URL."""
        with self._session() as db:
            rows = db.scalars(select(ConnectionRow).order_by(ConnectionRow.pim_url)).all()
            return [self._to_connection(db, row) for row in rows]

    def mark_revoked(self, pim_url: str) -> None:
        """Record that the PIM refused the token (the App was disconnected there)."""
        with self._session() as db:
            db.execute(
                update(ConnectionRow)
                .where(ConnectionRow.pim_url == pim_url, ConnectionRow.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        log.info("connection marked revoked pim=%s", pim_url)

    def forget(self, pim_url: str) -> bool:
        """Delete the connection to `pim_url`; True if there was one."""
        with self._session() as db:
            result = db.execute(delete(ConnectionRow).where(ConnectionRow.pim_url == pim_url))
            return bool(getattr(result, "rowcount", 0))

    def rotate_keys(self) -> int:
        """Re-encrypt every stored token with the first key; return how many were rewritten."""
        with self._session() as db:
            rows = db.scalars(select(ConnectionRow)).all()
            for row in rows:
                row.access_token = self._decrypt(row.access_token, row.pim_url, rotate=True)
            connection_rows = db.scalars(select(ConnectionTokenRow)).all()
            for token_row in connection_rows:
                token_row.access_token = self._decrypt(
                    token_row.access_token, token_row.key, rotate=True
                )
                if token_row.refresh_token:
                    token_row.refresh_token = self._decrypt(
                        token_row.refresh_token, token_row.key, rotate=True
                    )
            return len(rows) + len(connection_rows)

    # -- connection (password grant) tokens ----------------------------------------------------

    def connection_tokens(self, key: str) -> ConnectionTokens | None:
        """The stored tokens of a connection, decrypted, or None."""
        with self._session() as db:
            row = db.get(ConnectionTokenRow, key)
            if row is None:
                return None
            return ConnectionTokens(
                access_token=self._decrypt(row.access_token, key),
                refresh_token=self._decrypt(row.refresh_token, key) if row.refresh_token else None,
                expires_at=row.expires_at,
            )

    def save_connection_tokens(self, key: str, tokens: ConnectionTokens) -> None:
        """Store (or replace) a connection's tokens, encrypted."""
        with self._session() as db:
            row = db.get(ConnectionTokenRow, key) or ConnectionTokenRow(key=key)
            row.access_token = self._encrypt(tokens.access_token)
            row.refresh_token = (
                self._encrypt(tokens.refresh_token) if tokens.refresh_token else None
            )
            row.expires_at = tokens.expires_at
            db.merge(row)

    def _encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def _decrypt(self, ciphertext: str, what: str, *, rotate: bool = False) -> str:
        """The token in clear (or, with rotate, re-encrypted with the first key)."""
        try:
            if rotate:
                return self._fernet.rotate(ciphertext.encode()).decode()
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise RuntimeError(
                f"The token stored for {what} cannot be decrypted with any key of "
                "TOKEN_ENCRYPTION_KEY (or SECRET_KEY changed): list the old key after the new one."
            ) from None

    def _to_connection(self, db: Session, row: ConnectionRow) -> Connection:
        token = self._decrypt(row.access_token, row.pim_url)
        user_row = db.get(UserRow, row.user_id) if row.user_id else None
        user = User(user_row.sub, user_row.name, user_row.email) if user_row else None
        return Connection(
            pim_url=row.pim_url,
            access_token=token,
            scopes=tuple(row.scopes.split()),
            connected_at=_aware(row.connected_at),
            revoked=row.revoked_at is not None,
            user=user,
        )


def _update_or_insert(
    db: DbConnection,
    update_row: Any,
    insert_row: Any,
    where: dict[str, Any],
    values: dict[str, Any],
) -> int:
    """UPDATE the row that `where` names, or INSERT it; return its id (via RETURNING)."""
    row_id = db.execute(update_row, {**where, **values}).scalar()
    if row_id is None:
        row_id = db.execute(insert_row, values).scalar_one()
    return int(row_id)


def _make_engine(database_url: str) -> Engine:
    if make_url(database_url).get_backend_name() == "sqlite":
        engine = create_engine(database_url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # a server may drop idle connections: test each one as it leaves the pool
    return create_engine(database_url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets several gunicorn workers read while one writes; wait for a lock rather than fail
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")  # first: switching to WAL takes a lock too
    cursor.execute("PRAGMA journal_mode=WAL")
    # in WAL mode NORMAL cannot corrupt the file; a power cut may lose the last commits only
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
