"""The benchmark still runs (a few flows): it is a measuring tool, not a test of speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server


def test_the_benchmark_runs_flows_without_errors(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--flows",
            "6",
            "--activations",
            "64",
            "--rounds",
            "1",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parent.parent,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "complete flows" in run.stdout
    report = json.loads(output.read_text())
    assert [row["errors"] for row in report["flows"]] == [0, 0, 0]
    assert all(row["flows_per_s"] > 0 for row in report["flows"])
    assert report["activate"]["errors"] == 0 and report["activate"]["requests_per_s"] > 0
    assert len(report["worker_peak_rss_mb"]) == 2


def test_the_product_benchmark_reads_the_whole_catalog_both_ways() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.products", "--products", "300", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parent.parent,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "after 300" in run.stdout and "client ÷ plain" in run.stdout
    assert run.stdout.count("after 300") == 2  # both readers read every product
