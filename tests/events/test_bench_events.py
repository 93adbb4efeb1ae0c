"""The events benchmark runs to the end (its figures are for people, not for tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.worker


def test_the_events_benchmark_measures_latency_and_the_webhooks_rate() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.events", "--renames", "3", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parent.parent.parent,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"3 renames, one at a time: p50 \d+ ms, p95 \d+ ms", run.stdout), run.stdout
    assert re.search(r"\d+ events/s; a trivial route of the same App \d+ requests/s", run.stdout)


def test_the_real_pim_benchmark_prints_its_four_figures() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.realpim", "--products", "100"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent.parent,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    last = run.stdout.splitlines()[-4:]
    assert [line.split(":")[0] for line in last] == [
        "sync ÷ plain read",
        "2 PIMs ÷ 1 PIM",
        "bulk change ÷ incremental run",
        "most calls in flight per connection",
    ], run.stdout
    assert int(last[-1].split(": ")[1]) <= 4, run.stdout
