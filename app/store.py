"""Where the App keeps what must outlive a request: connections, users, sessions, spent states.

SQLite by default (files readable by their owner only), PostgreSQL (or any SQLAlchemy database)
through DATABASE_URL. Access tokens are encrypted with Fernet before they reach the database; the
first key encrypts, every key decrypts, so keys can be rotated without losing connections.
Authorization states and session ids are stored as hashes; a state is recorded under a unique key
when a callback spends it, so it works once even across processes and replays.
"""

from __future__ import annotations

import hashlib
import logging
import os
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
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .errors import ConfigError, TokenUnreadable
from .identity import User

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
CLAIM_TTL = timedelta(seconds=30)


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


class SpentStateRow(Base):
    """An authorization state a callback has used: its hash, so that it never works twice.

    Nothing is written when a state is issued (/activate takes no database write from strangers):
    the state and its PIM travel in the signed session cookie, and are recorded here when spent.
    """

    __tablename__ = "spent_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    spent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class BrowserSessionRow(Base):
    """A signed-in browser: the hash of the id in its cookie, its PIM and user, until when.

    The cookie alone cannot be taken back; this row can: sign-out deletes it, and a copy of the
    cookie made before then no longer opens the connected page.
    """

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    pim_url: Mapped[str] = mapped_column(String(2048))
    user_sub: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CatalogRow(Base):
    """The App's catalog in a PIM: its id there (the PIM keeps the rest)."""

    __tablename__ = "app_catalogs"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CatalogClaimRow(Base):
    """A request creating the App's catalog in a PIM right now: one at a time per PIM."""

    __tablename__ = "catalog_claims"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConnectionTokenRow(Base):
    """The current tokens of a connection (password grant), encrypted like App tokens."""

    __tablename__ = "connection_tokens"

    key: Mapped[str] = mapped_column(String(2400), primary_key=True)  # pim|client id|username
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[float]


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


def _hash(secret: str) -> str:
    # only a hash is stored: a database reader can replay neither a state nor a session id
    return hashlib.sha256(secret.encode()).hexdigest()


def _one_in_256(hashed: str) -> bool:
    # housekeeping on about one write in 256 (chosen by the random hash): stale rows stay a
    # few minutes longer, and the other 255 writes touch one row only
    return hashed.startswith("00")


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for what was stored as UTC
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Store:
    """The App's database: connections, users, browser sessions and spent states."""

    def __init__(self, database_url: str, encryption_keys: Sequence[str]) -> None:
        self.engine = _make_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._fernet = MultiFernet([Fernet(key) for key in encryption_keys])

    def create_schema(self) -> None:
        """Create missing tables; safe when several processes start at once."""
        try:
            self._create_schema()
        except OperationalError as error:
            where = self.engine.url.render_as_string(hide_password=True)
            reason = str(error.orig).strip().splitlines()[0] if error.orig else "no answer"
            raise ConfigError(
                f"The database in DATABASE_URL ({where}) cannot be used: {reason}. Check the "
                "address and that the server runs."
            ) from None

    def _create_schema(self) -> None:
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

    def spend_state(self, state: str) -> bool:
        """Record that a callback used `state`: True the first time, False ever after."""
        now = _now()
        state_hash = _hash(state)
        try:
            with self.engine.begin() as db:
                if _one_in_256(state_hash):
                    # older states are refused by their age in the cookie: their rows can go
                    db.execute(_PRUNE_SPENT, {"b_oldest": now - STATE_TTL})
                db.execute(_SPEND_STATE, {"state_hash": state_hash, "spent_at": now})
        except IntegrityError:
            return False
        return True

    # -- browser sessions ----------------------------------------------------------------------

    def open_session(
        self, session_id: str, pim_url: str, user_sub: str | None, lifetime: timedelta
    ) -> None:
        """Remember a signed-in browser (by the hash of its session id) for `lifetime`."""
        now = _now()
        id_hash = _hash(session_id)
        with self.engine.begin() as db:
            if _one_in_256(id_hash):
                db.execute(_PRUNE_SESSIONS, {"b_now": now})
            db.execute(
                _ADD_SESSION,
                {
                    "id_hash": id_hash,
                    "pim_url": pim_url,
                    "user_sub": user_sub,
                    "expires_at": now + lifetime,
                },
            )

    def session_pim(self, session_id: str) -> str | None:
        """The PIM of a signed-in browser; None once it signed out or its session expired."""
        with self.engine.connect() as db:
            row = db.execute(_SESSION_PIM, {"b_hash": _hash(session_id), "b_now": _now()}).first()
            return str(row[0]) if row else None

    def close_session(self, session_id: str) -> None:
        """Sign a browser out for good: its cookie, even a copy, opens nothing any more."""
        with self.engine.begin() as db:
            db.execute(_END_SESSION, {"b_hash": _hash(session_id)})

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

    def is_connected(self, pim_url: str) -> bool:
        """True when a connection to `pim_url` is stored (revoked or not); nothing decrypted."""
        with self._session() as db:
            found = db.scalar(select(ConnectionRow.id).where(ConnectionRow.pim_url == pim_url))
            return found is not None

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

    def claim_catalog(self, pim_url: str) -> bool:
        """True for the one request that may create the catalog in `pim_url` now (a claim older
        than CLAIM_TTL, left by a crashed request, is taken over)."""
        now = _now()
        try:
            with self.engine.begin() as db:
                db.execute(
                    delete(CatalogClaimRow).where(
                        CatalogClaimRow.pim_url == pim_url,
                        CatalogClaimRow.claimed_at < now - CLAIM_TTL,
                    )
                )
                db.execute(insert(CatalogClaimRow).values(pim_url=pim_url, claimed_at=now))
        except IntegrityError:
            return False
        return True

    def release_catalog_claim(self, pim_url: str) -> None:
        """The catalog is made (or could not be): others may go on."""
        with self.engine.begin() as db:
            db.execute(delete(CatalogClaimRow).where(CatalogClaimRow.pim_url == pim_url))

    def catalog_id(self, pim_url: str) -> str | None:
        """The id of the App's catalog in `pim_url`, if the App made sure of one."""
        with self._session() as db:
            row = db.get(CatalogRow, pim_url)
            return row.catalog_id if row else None

    def save_catalog(self, pim_url: str, catalog_id: str) -> None:
        """Remember the App's catalog in `pim_url` (safe when several requests do it at once)."""
        values = {"catalog_id": catalog_id, "updated_at": _now()}
        for attempt in (1, 2):
            try:
                with self.engine.begin() as db:
                    changed = db.execute(
                        update(CatalogRow).where(CatalogRow.pim_url == pim_url).values(**values)
                    ).rowcount
                    if not changed:
                        db.execute(insert(CatalogRow).values(pim_url=pim_url, **values))
                return
            except IntegrityError:
                if attempt == 2:  # another request inserted it meanwhile: update it then
                    raise

    def rotate_keys(self) -> int:
        """Re-encrypt every stored token with the first key; return how many were rewritten."""
        with self._session() as db:
            rows = db.scalars(select(ConnectionRow)).all()
            for row in rows:
                row.access_token = self._decrypt(row.access_token, row.pim_url, rotate=True)
            connection_rows = db.scalars(select(ConnectionTokenRow)).all()
            for token_row in connection_rows:
                pim_url = token_row.key.split("|", 1)[0]
                token_row.access_token = self._decrypt(token_row.access_token, pim_url, rotate=True)
                if token_row.refresh_token:
                    token_row.refresh_token = self._decrypt(
                        token_row.refresh_token, pim_url, rotate=True
                    )
            return len(rows) + len(connection_rows)

    # -- connection (password grant) tokens ----------------------------------------------------

    def connection_tokens(self, key: str) -> ConnectionTokens | None:
        """The stored tokens of a connection, decrypted; None when there are none or when no
        key decrypts them any more (the password grant then gets new ones)."""
        pim_url = key.split("|", 1)[0]
        with self._session() as db:
            row = db.get(ConnectionTokenRow, key)
            if row is None:
                return None
            try:
                return ConnectionTokens(
                    access_token=self._decrypt(row.access_token, pim_url),
                    refresh_token=self._decrypt(row.refresh_token, pim_url)
                    if row.refresh_token
                    else None,
                    expires_at=row.expires_at,
                )
            except TokenUnreadable:
                log.warning("connection tokens unreadable pim=%s: fetched again", pim_url)
                return None

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

    def _decrypt(self, ciphertext: str, pim_url: str, *, rotate: bool = False) -> str:
        """The token in clear (or, with rotate, re-encrypted with the first key)."""
        try:
            if rotate:
                return self._fernet.rotate(ciphertext.encode()).decode()
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenUnreadable(
                f"The App's token for {pim_url} was encrypted with a key the App no longer has "
                "(TOKEN_ENCRYPTION_KEY or SECRET_KEY changed). Connect again from the PIM to "
                "store a new one, or list the old key after the new one in TOKEN_ENCRYPTION_KEY.",
                pim_url=pim_url,
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
    try:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                _private_file(url.database)
            engine = create_engine(database_url)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # a server may drop idle connections: test each one as it leaves the pool
        return create_engine(database_url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError):
        raise ConfigError(
            "DATABASE_URL is not a database URL this App can use: use sqlite:///path/to/file.db "
            "or postgresql+psycopg://user:password@host:5432/db."
        ) from None


def _private_file(path: str) -> None:
    """Create the SQLite file readable by its owner only (SQLite gives its -wal and -shm files
    the same mode); an existing file of ours is made private too."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as error:
        raise ConfigError(
            f"The database file {path} cannot be opened for writing ({error.strerror}): make "
            f"{folder} writable by this user (in a container, mount a volume there), or set "
            "DATABASE_URL."
        ) from None
    if os.stat(path).st_uid == os.getuid():
        os.chmod(path, 0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets several gunicorn workers read while one writes; wait for a lock rather than fail
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")  # first: switching to WAL takes a lock too
    cursor.execute("PRAGMA journal_mode=WAL")
    # in WAL mode NORMAL cannot corrupt the file; a power cut may lose the last commits only
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
