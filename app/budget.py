"""How many calls the App has in flight to each PIM, counted across all of its processes.

Akeneo lets an App have 4 calls in flight per connection, and refuses more with 429 (not always
with a Retry-After). The web processes and every worker call a PIM with the same token, so a
count kept in each process would let three workers make twelve. The count lives where they all
see it: in lock files beside a SQLite database (`FileBudget`: one machine), in PostgreSQL's rows
(`DatabaseBudget`), or in Redis when the broker is Redis (`RedisBudget`, which the sync feature
installs). `LocalBudget` counts in one process only.

A slot is taken for one attempt of one call and given back after it. A process that dies
holding one loses it `hold` seconds later (longer than any attempt may take).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import secrets
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # Windows: no flock; each process counts its own there
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Integer, String, and_, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, database_now

log = logging.getLogger(__name__)

#: Akeneo's limit per connection (good practices: 4 calls in flight, 10 per PIM)
MAX_IN_FLIGHT = 4
FIRST_POLL, LAST_POLL = 0.005, 0.05  # seconds between two tries for a slot, growing


def hold_for(timeout: float) -> float:
    """How long a slot is held at most, for calls whose attempts last `timeout` at most."""
    return timeout + 5.0


class CallBudget(Protocol):
    """Slots for calls in flight, per key (a PIM's host)."""

    def acquire(self, key: str, timeout: float) -> str | None:
        """A slot for one call to `key`, waiting up to `timeout` seconds; None if none came."""

    def release(self, key: str, slot: str) -> None:
        """Give back a slot that acquire() gave."""


def _wait_for(take: Any, timeout: float) -> str | None:
    """Call `take()` until it gives a slot or `timeout` passes, pausing a little longer (with
    jitter) each time: waiters that started together do not ask together."""
    deadline = time.monotonic() + timeout
    pause = FIRST_POLL
    while True:
        slot: str | None = take()
        if slot is not None:
            return slot
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(left, pause * random.uniform(0.5, 1.5)))
        pause = min(LAST_POLL, pause * 2)


class LocalBudget:
    """One process's count: a semaphore per key."""

    def __init__(self, limit: int = MAX_IN_FLIGHT) -> None:
        self.limit = limit
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, timeout: float) -> str | None:
        with self._lock:
            semaphore = self._semaphores.setdefault(key, threading.BoundedSemaphore(self.limit))
        return "local" if semaphore.acquire(timeout=max(timeout, 0)) else None

    def release(self, key: str, slot: str) -> None:
        self._semaphores[key].release()


class Shared:
    """A count all the App's processes share, or this process's own while it does not answer
    (a broker or database down must not stop the calls that do not need it: the page that says
    it is down, say); it is asked again RETRY_SHARED seconds later."""

    RETRY_SHARED = 10.0

    def __init__(self, shared: CallBudget, limit: int) -> None:
        self.shared, self.local = shared, LocalBudget(limit)
        self._down_until = 0.0

    def acquire(self, key: str, timeout: float) -> str | None:
        if time.monotonic() >= self._down_until:
            try:
                slot = self.shared.acquire(key, timeout)
                return None if slot is None else f"shared:{slot}"
            except Exception as error:  # Redis or the database does not answer
                log.warning(
                    "the shared count of calls in flight does not answer (%s): this process "
                    "counts its own for %.0f s",
                    type(error).__name__,
                    self.RETRY_SHARED,
                )
                self._down_until = time.monotonic() + self.RETRY_SHARED
        slot = self.local.acquire(key, timeout)
        return None if slot is None else f"local:{slot}"

    def release(self, key: str, slot: str) -> None:
        kind, _, inner = slot.partition(":")
        (self.shared if kind == "shared" else self.local).release(key, inner)


class FileBudget:
    """The count for processes of one machine (the App on SQLite: its file is on that machine),
    in lock files: `limit` files per key, each held by one call at a time with flock. A write
    of the database per call would wait behind every page the sync saves; a lock is a system
    call, and the kernel frees the locks of a process that dies."""

    def __init__(self, folder: Path, limit: int = MAX_IN_FLIGHT) -> None:
        self.folder, self.limit = folder, limit
        folder.mkdir(parents=True, exist_ok=True)
        self._held: dict[str, int] = {}  # slot: its open file (a lock is per open file)
        self._lock = threading.Lock()

    def acquire(self, key: str, timeout: float) -> str | None:
        return _wait_for(lambda: self._take(key), timeout)

    def release(self, key: str, slot: str) -> None:
        with self._lock:
            fd = self._held.pop(slot)
        os.close(fd)  # closing the file lets its lock go

    def _take(self, key: str) -> str | None:
        name = hashlib.sha256(key.encode()).hexdigest()[:16]
        for number in range(self.limit):
            path = self.folder / f"{name}.{number}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            slot = f"{number}:{secrets.token_hex(8)}"
            with self._lock:
                self._held[slot] = fd
            return slot
        return None


def shared_budget(engine: Engine, limit: int, hold: float) -> CallBudget:
    """The App's count of calls in flight, shared by its processes: lock files beside a SQLite
    database (one machine), the database's rows otherwise (PostgreSQL: any number of them)."""
    if engine.dialect.name == "sqlite" and engine.url.database and fcntl is not None:
        folder = Path(engine.url.database).resolve().parent / ".calls-in-flight"
        return FileBudget(folder, limit)
    return DatabaseBudget(engine, limit, hold)


class CallSlotRow(Base):
    """One of the `limit` slots of calls in flight to a PIM; free when `holder` is None or its
    time is up."""

    __tablename__ = "pim_call_slots"

    key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(32))
    until: Mapped[datetime | None]


class DatabaseBudget:
    """The count in the App's database: `limit` rows per key, each taken by one call at a time.

    Taking one is a single UPDATE of a free row (SQLite serializes writers; PostgreSQL skips the
    rows other transactions hold), measured on the database's clock."""

    def __init__(self, engine: Engine, limit: int = MAX_IN_FLIGHT, hold: float = 60.0) -> None:
        self.engine, self.limit, self.hold = engine, limit, timedelta(seconds=hold)
        self._keys: set[str] = set()  # keys whose rows this process made sure of
        self._keys_lock = threading.Lock()

    def acquire(self, key: str, timeout: float) -> str | None:
        self._rows_for(key)
        return _wait_for(lambda: self._take(key), timeout)

    def release(self, key: str, slot: str) -> None:
        number, holder = slot.split(":", 1)
        with self.engine.begin() as db:
            db.execute(
                update(CallSlotRow)
                .where(
                    CallSlotRow.key == key,
                    CallSlotRow.slot == int(number),
                    CallSlotRow.holder == holder,
                )
                .values(holder=None, until=None)
            )

    def _take(self, key: str) -> str | None:
        holder = secrets.token_hex(8)
        with self.engine.begin() as db:
            moment = database_now(db)
            free = (
                select(CallSlotRow.slot)
                .where(
                    CallSlotRow.key == key,
                    CallSlotRow.slot < self.limit,
                    or_(CallSlotRow.holder.is_(None), CallSlotRow.until < moment),
                )
                .limit(1)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
                .scalar_subquery()
            )
            taken = db.execute(
                update(CallSlotRow)
                .where(and_(CallSlotRow.key == key, CallSlotRow.slot == free))
                .values(holder=holder, until=moment + self.hold)
                .returning(CallSlotRow.slot)
            ).scalar()
        return None if taken is None else f"{taken}:{holder}"

    def _rows_for(self, key: str) -> None:
        with self._keys_lock:
            if key in self._keys:
                return
        with self.engine.begin() as db:
            have = set(db.execute(select(CallSlotRow.slot).where(CallSlotRow.key == key)).scalars())
            missing = [{"key": key, "slot": n} for n in range(self.limit) if n not in have]
            if missing:
                # two processes may add the same rows at once: the loser's insert fails alone
                try:
                    with db.begin_nested():
                        db.execute(insert(CallSlotRow), missing)
                except IntegrityError:  # made by another process meanwhile
                    pass
        with self._keys_lock:
            self._keys.add(key)


# KEYS[1]: the key's sorted set (member: a holder, score: until, in ms on Redis's clock)
# ARGV: limit, hold in ms, holder. 1 when taken.
_TAKE = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"""


class RedisBudget:
    """The count in Redis: a sorted set per key of the calls in flight, each with its end of
    hold; taking a slot is one script (atomic), on Redis's own clock."""

    def __init__(self, url: str, limit: int = MAX_IN_FLIGHT, hold: float = 60.0) -> None:
        import redis  # only when the broker is Redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        self.limit, self.hold_ms = limit, int(hold * 1000)
        self._take_script = self.redis.register_script(_TAKE)

    def acquire(self, key: str, timeout: float) -> str | None:
        return _wait_for(lambda: self._take(key), timeout)

    def release(self, key: str, slot: str) -> None:
        self.redis.zrem(_redis_key(key), slot)

    def _take(self, key: str) -> str | None:
        holder = secrets.token_hex(8)
        taken = self._take_script(keys=[_redis_key(key)], args=[self.limit, self.hold_ms, holder])
        return holder if taken == 1 else None


def _redis_key(key: str) -> str:
    return f"akeneo-app:calls-in-flight:{key}"
