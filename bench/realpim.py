"""Benchmark: the App against local PIMs that answer as a real PIM does.

    .venv/bin/python -m bench.realpim               # 10,000 products per PIM

Each local PIM (its own process, `bench.pim_server`) takes 100 ms an API call, refuses a fifth
call in flight per token with 429 (every other refusal without Retry-After), and its Event
Platform delivers at most 100 events a second. The App runs under gunicorn, its workers are
Celery processes on the default broker (the App's SQLite database). Fresh workers each time:

1. one worker, one PIM: a full sync, then a plain loop over the same mapped-products pages;
2. two workers, two PIMs, a full sync of each at once;
3. two workers, one PIM, the App subscribed to its events: an import renames every product (one
   event each); the time from the last event's delivery to an exact copy; then the same import
   with the events off, read by one incremental run: that run's time.

Its last four lines are the figures the README quotes. Loopback only; it stops by itself.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import requests

from bench.sync import Setup
from launcher import stop_process

PACE = ("--latency", "0.1", "--max-in-flight", "4")  # a real PIM's (Akeneo's good practices)


def most_in_flight(setup: Setup) -> int:
    """The most API calls the PIMs saw in flight at once for one token."""
    return max(
        requests.get(f"{url}/pace", timeout=5).json()["most_in_flight"] for url, _ in setup.pims
    )


def api_calls(setup: Setup) -> int:
    return sum(requests.get(f"{url}/pace", timeout=5).json()["api_calls"] for url, _ in setup.pims)


def stale_products(setup: Setup, title: str) -> int:
    """Products of the App's copy whose title is not `title` (0: the copy is exact)."""
    with closing(sqlite3.connect(setup.workdir / "bench.db", timeout=30)) as db:
        row = db.execute(
            "SELECT count(*) FROM synced_products WHERE json_extract(data, '$.title') != ?",
            (title,),
        ).fetchone()
    return int(row[0])


def wait_until(check: Any, what: str, timeout: float = 600.0, every: float = 0.05) -> float:
    """Poll `check()` until it is true; the moment it first was (time.monotonic())."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic()


def full_syncs(products: int, pims: int) -> dict[str, Any]:
    """Full syncs of `pims` PIMs by as many workers at once; and, with one PIM, a plain loop."""
    with tempfile.TemporaryDirectory(prefix="akeneo-realpim-bench-") as folder:
        setup = Setup(Path(folder), products, pims, pim_args=PACE)
        workers = setup.workers(pims)
        try:
            seconds = setup.sync_all()
            plain = setup.read_plainly() if pims == 1 else 0.0
            most = most_in_flight(setup)
        finally:
            stop_process(*workers)
            setup.stop()
    return {
        "products": setup.products,
        "seconds": seconds,
        "per_s": setup.products / seconds,
        "plain_per_s": plain,
        "most": most,
    }


def bulk_change(products: int) -> dict[str, Any]:
    """An import of every product, through the events and then through one incremental run."""
    with tempfile.TemporaryDirectory(prefix="akeneo-realpim-bench-") as folder:
        setup = Setup(Path(folder), products, 1, pim_args=PACE, events=True)
        pim_url = setup.pims[0][0]
        workers = setup.workers(2)
        try:
            setup.sync_all()  # the first copy
            calls_before = api_calls(setup)
            imported = requests.post(
                f"{pim_url}/products/import",
                data={"count": products, "name": "Bulk 1"},
                timeout=120,
            ).json()["imported"]
            first_event = time.monotonic()

            def delivered() -> bool:
                pace = requests.get(f"{pim_url}/pace", timeout=5).json()
                return bool(pace["undelivered"] == 0 and pace["delivered"] >= imported)

            last_event = wait_until(delivered, "the import's events")
            exact = wait_until(
                lambda: stale_products(setup, "Bulk 1") == 0, "an exact copy", every=0.1
            )
            by_events = exact - last_event
            event_calls = api_calls(setup) - calls_before

            # the same change with the events off: one incremental run reads it
            requests.post(f"{pim_url}/apps/event-platform", data={}, timeout=10)
            requests.post(
                f"{pim_url}/products/import",
                data={"count": products, "name": "Bulk 2"},
                timeout=120,
            )
            calls_before = api_calls(setup)
            started = time.monotonic()
            queue_incremental_sync(setup)
            ended = wait_until(lambda: stale_products(setup, "Bulk 2") == 0, "the run", every=0.1)
            run_calls = api_calls(setup) - calls_before
            most = most_in_flight(setup)
        finally:
            stop_process(*workers)
            setup.stop()
    return {
        "events_seconds": last_event - first_event,
        "after_last_event": by_events,
        "event_calls": event_calls,
        "run_seconds": ended - started,
        "run_calls": run_calls,
        "most": most,
    }


def queue_incremental_sync(setup: Setup) -> None:
    """What the periodic sync does: an incremental run of the first PIM's catalog."""
    from app import create_app
    from app.sync.tasks import queue_sync

    app = create_app(setup.env)
    try:
        with app.app_context():
            if not queue_sync(setup.pims[0][0]):
                raise RuntimeError("a run was on already")
    finally:
        app.extensions["akeneo_database"].close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.realpim", description=__doc__)
    parser.add_argument("--products", type=int, default=10_000)
    args = parser.parse_args()
    out = sys.stdout.write
    out(f"local PIMs at 100 ms a call, 4 calls in flight per token, {args.products} products\n")
    one = full_syncs(args.products, 1)
    out(
        f"1 worker, 1 PIM: a full sync of {one['products']} products in {one['seconds']:.1f} s "
        f"= {one['per_s']:.0f}/s; a plain loop over the same pages: {one['plain_per_s']:.0f}/s\n"
    )
    two = full_syncs(args.products, 2)
    out(
        f"2 workers, 2 PIMs: {two['products']} products in {two['seconds']:.1f} s "
        f"= {two['per_s']:.0f}/s\n"
    )
    bulk = bulk_change(args.products)
    out(
        f"an import of {args.products} products: its events took {bulk['events_seconds']:.1f} s "
        f"to arrive; the copy was exact {bulk['after_last_event']:.1f} s after the last one, "
        f"with {bulk['event_calls']} API calls; one incremental run over the same change: "
        f"{bulk['run_seconds']:.1f} s, {bulk['run_calls']} calls\n"
    )
    out(f"sync ÷ plain read: {one['per_s'] / one['plain_per_s']:.2f}\n")
    out(f"2 PIMs ÷ 1 PIM: {two['per_s'] / one['per_s']:.2f}\n")
    out(f"bulk change ÷ incremental run: {bulk['after_last_event'] / bulk['run_seconds']:.2f}\n")
    out(f"most calls in flight per connection: {max(one['most'], two['most'], bulk['most'])}\n")


if __name__ == "__main__":
    main()
