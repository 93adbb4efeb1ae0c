"""The database every part of the App shares: its engine, its tables' base, and encryption.

SQLite by default (files readable by their owner only), PostgreSQL (or any SQLAlchemy database)
through DATABASE_URL. Each table family lives with its owner (the core's in `store.py`, each
feature's in its package) on the one `Base`; `Database.create_schema()` creates whatever tables
the App's parts have declared.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import DateTime, Table, case, create_engine, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from .errors import ConfigError

log = logging.getLogger(__name__)


class UtcDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and always read back with its zone (SQLite forgets it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes: a moment without a zone is a bug waiting to happen."""
        if value is not None and value.tzinfo is None:
            raise ValueError("a datetime stored by the App must carry its time zone")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The stored moment, in UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table of the App (core and features)."""

    type_annotation_map = {datetime: UtcDateTime}


def now() -> datetime:
    """The current moment, in UTC."""
    return datetime.now(UTC)


def database_now(db: Connection) -> datetime:
    """The database server's current moment, in UTC: one clock for every worker, whatever
    their own clocks say (what leases are measured with)."""
    if db.dialect.name == "sqlite":  # a file on this machine: this machine's clock is its own
        return now()
    moment: datetime = db.execute(text("SELECT CURRENT_TIMESTAMP")).scalar_one()
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def upsert_statement(
    dialect: str,
    table: Table,
    *,
    key: Sequence[str],
    columns: Sequence[str],
    returning: Sequence[str] = (),
    keep_when: Mapping[str, Any] | None = None,
    newer_wins: str | None = None,
) -> Any:
    """INSERT … ON CONFLICT (`key`) DO UPDATE SET `columns`: one statement, race-free, that SQLite
    and PostgreSQL both understand. Build it once and execute it with the row(s) as parameters.

    `keep_when` maps a column to a condition on the stored row: while it holds, the column keeps
    its stored value. With `newer_wins` (a column, a moment), a stored row whose value there is
    later than the new row's keeps every column: the last one read wins, whatever order the
    writes come in."""
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise ConfigError(f"The App's upserts need SQLite or PostgreSQL, not {dialect}.")
    changed = {name: statement.excluded[name] for name in columns if name not in key}
    conditions = dict(keep_when or {})
    if newer_wins:
        stored_is_newer = table.c[newer_wins] > statement.excluded[newer_wins]
        conditions.update({name: stored_is_newer for name in changed})
    for name, condition in conditions.items():
        changed[name] = case((condition, table.c[name]), else_=statement.excluded[name])
    if changed:
        statement = statement.on_conflict_do_update(index_elements=list(key), set_=changed)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(key))
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
    return statement


def upsert(
    db: Connection,
    table: Table,
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    newer_wins: str | None = None,
    keep_existing: bool = False,
) -> int:
    """Insert `rows`, or update those whose `key` exists (see upsert_statement); with
    `keep_existing`, rows whose key exists stay as they are (DO NOTHING). For one row (a
    mapping): 1 when it was written, 0 when `keep_existing` kept the stored one."""
    # one row goes alone, not as a list of one: then every driver counts what it wrote
    # (executemany may not), and SQLAlchemy keeps an INSERT's count when asked to
    params: Mapping[str, Any] | list[Mapping[str, Any]] = (
        rows if isinstance(rows, Mapping) else list(rows)
    )
    if not params:
        return 0
    first = params if isinstance(params, Mapping) else params[0]
    columns = tuple(key) if keep_existing else tuple(first)
    statement = _upsert_for(db.dialect.name, table, tuple(key), columns, newer_wins)
    written = db.execute(statement, params, execution_options={"preserve_rowcount": True})
    return int(written.rowcount)


@lru_cache(maxsize=64)  # building a statement costs more than running it: once per shape
def _upsert_for(
    dialect: str,
    table: Table,
    key: tuple[str, ...],
    columns: tuple[str, ...],
    newer_wins: str | None,
) -> Any:
    return upsert_statement(dialect, table, key=key, columns=columns, newer_wins=newer_wins)


class Database:
    """The App's engine and the creation of its tables."""

    def __init__(self, database_url: str) -> None:
        self.engine = _make_engine(database_url)

    def create_schema(self) -> None:
        """Create the missing tables of every part of the App; safe when several processes
        start at once."""
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

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as db:
            db.execute(text("SELECT 1"))

    def close(self) -> None:
        """Close the pooled connections (at shutdown, or when a test is done)."""
        self.engine.dispose()


class Unreadable(Exception):
    """No key of the App decrypts this ciphertext any more."""


class Encryption:
    """Fernet with rotation: the first key encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, secret: str) -> str:
        """`secret`, encrypted with the first key."""
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """The secret in clear; Unreadable when no key decrypts it."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise Unreadable from None

    def rotate(self, ciphertext: str) -> str:
        """The same secret, encrypted again with the first key; Unreadable as decrypt()."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise Unreadable from None


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


class SqliteConnection(sqlite3.Connection):
    """A SQLite connection set up as the App's own (WAL, NORMAL sync, a busy timeout), for an
    engine made elsewhere: `create_engine(url, connect_args={"factory": SqliteConnection})`.
    kombu's SQL broker makes its own engine on the App's file: with SQLite's default FULL sync
    every queued job waited for the disk (a few ms each)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _sqlite_pragmas(self, None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets several gunicorn workers read while one writes; wait for a lock rather than fail
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")  # first: switching to WAL takes a lock too
    cursor.execute("PRAGMA journal_mode=WAL")
    # in WAL mode NORMAL cannot corrupt the file; a power cut may lose the last commits only
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
