"""One count of the calls in flight per PIM, shared by every process of the App: in the
database, or in Redis. Each App process has its own client; here several clients stand for
several processes, calling a local PIM that answers in 50 ms and refuses a fifth call at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import update

from app.akeneo import AkeneoClient
from app.budget import (
    CallBudget,
    CallSlotRow,
    DatabaseBudget,
    FileBudget,
    LocalBudget,
    RedisBudget,
    Shared,
    shared_budget,
)
from app.db import Database, now
from tests.pims import FakePim, run_together
from tests.servers import RedisServer


def fill(budget: CallBudget, key: str = "pim.test") -> list[str]:
    """Every slot the budget gives at once (at most 10)."""
    slots = []
    while len(slots) < 10 and (slot := budget.acquire(key, 0.05)) is not None:
        slots.append(slot)
    return slots


def test_the_database_gives_four_slots_per_pim_and_a_freed_one_again(database: Database) -> None:
    budget = DatabaseBudget(database.engine, limit=4, hold=30)
    other_process = DatabaseBudget(database.engine, limit=4, hold=30)
    slots = fill(budget)
    assert len(slots) == 4 and other_process.acquire("pim.test", 0.05) is None
    assert len(fill(other_process, "other-pim.test")) == 4  # each PIM has its own
    budget.release("pim.test", slots[0])
    assert other_process.acquire("pim.test", 0.5) is not None


def test_lock_files_give_four_slots_per_pim_to_every_process_of_a_machine(
    tmp_path: Path,
) -> None:
    budget = FileBudget(tmp_path / "calls", limit=4)
    other_process = FileBudget(tmp_path / "calls", limit=4)  # its own open files: its own locks
    slots = fill(budget)
    assert len(slots) == 4 and other_process.acquire("pim.test", 0.05) is None
    assert len(fill(other_process, "other-pim.test")) == 4
    budget.release("pim.test", slots[0])
    assert other_process.acquire("pim.test", 0.5) is not None
    for fd in list(budget._held.values()):  # the process dies: the kernel frees its locks
        os.close(fd)
    assert len(fill(FileBudget(tmp_path / "calls", limit=4))) == 3  # and the other holds one


def test_a_sqlite_app_counts_in_lock_files_and_a_postgresql_one_in_its_rows(
    database: Database,
) -> None:
    kind = type(shared_budget(database.engine, 4, 10)).__name__
    assert kind == ("FileBudget" if database.engine.dialect.name == "sqlite" else "DatabaseBudget")


def test_a_slot_of_a_process_that_died_frees_itself(database: Database) -> None:
    budget = DatabaseBudget(database.engine, limit=2, hold=30)
    fill(budget)  # a process took both, then died without giving them back
    with database.engine.begin() as db:  # 30 s later
        db.execute(update(CallSlotRow).values(until=now()))
    assert budget.acquire("pim.test", 0.5) is not None


@pytest.mark.worker
def test_redis_gives_four_slots_per_pim_and_frees_a_dead_processes(
    redis_server: RedisServer,
) -> None:
    budget = RedisBudget(redis_server.url, limit=4, hold=0.5)
    other_process = RedisBudget(redis_server.url, limit=4, hold=0.5)
    slots = fill(budget, "redis-pim.test")
    assert len(slots) == 4 and other_process.acquire("redis-pim.test", 0.05) is None
    budget.release("redis-pim.test", slots[0])
    assert other_process.acquire("redis-pim.test", 0.2) is not None
    assert other_process.acquire("redis-pim.test", 1.0) is not None  # the rest expired


def test_a_shared_count_that_does_not_answer_falls_back_to_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Down:
        def acquire(self, key: str, timeout: float) -> str | None:
            raise ConnectionError("refused")

        def release(self, key: str, slot: str) -> None:
            raise AssertionError("never given")

    budget = Shared(Down(), limit=2)
    slots = fill(budget)
    assert len(slots) == 2 and "counts its own" in caplog.text
    budget.release("pim.test", slots[0])
    assert budget.acquire("pim.test", 0.05) is not None


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per process"])
def test_three_processes_never_have_more_than_four_calls_in_flight(
    tmp_path: Path, pim: FakePim, shared: bool
) -> None:
    pim.state.pace.latency = 0.05  # counted, not refused
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    database.create_schema()
    processes = [AkeneoClient("id", "secret", timeout=5) for _ in range(3)]
    for process in processes:
        budget = shared_budget(database.engine, limit=4, hold=10)  # lock files: SQLite
        process.budget = Shared(budget, 4) if shared else LocalBudget(4)
    errors: list[Exception] = []

    def calls(process: AkeneoClient) -> None:
        for _ in range(4):
            try:
                process.send("GET", pim.url, "/api/rest/v1/channels", what="calls", token=TOKEN)
            except Exception as error:  # a 401 is fine: the PIM counted the call all the same
                errors.append(error)

    run_together(*(lambda p=p: calls(p) for p in processes for _ in range(3)))
    most = pim.state.pace.most()
    if shared:
        assert most <= 4
    else:  # what the shared count is for: three processes alone make more
        assert most > 4


TOKEN = "a-token-the-pim-counts-calls-by"
