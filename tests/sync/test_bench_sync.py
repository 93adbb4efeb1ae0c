"""The sync's benchmark runs to the end (its figures are for people, not for tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.worker


def test_the_sync_benchmark_syncs_every_catalog_on_real_workers() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.sync", "--products", "200", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parent.parent.parent,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if "products/s" in line]
    assert len(lines) == 3, run.stdout
    assert "180 products" in lines[1] and "360 products" in lines[2]  # the enabled ones, all
