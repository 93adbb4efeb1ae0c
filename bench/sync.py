"""Benchmark: the sync end to end, from local PIMs to the App's database, on Celery workers.

    .venv/bin/python -m bench.sync                  # 10,000 products per PIM

Each local PIM runs in its own process (`bench.pim_server`); the App runs under gunicorn, as in
production; each worker is a `celery -A app.sync.make_celery worker --pool solo` process of its
own, on the App's default broker (its SQLite database). Each run has fresh workers:

- one worker, one PIM, 1,000 products: the worker's peak RSS for a small catalog;
- then `--rounds` rounds (5) of two runs:
  - one worker, one PIM, all products: products/s and the worker's peak RSS, then a plain
    `requests` loop over the same mapped-products pages;
  - two workers, two PIMs of all products at once: products/s over both.

The last two lines are the medians of the rounds' ratios: the sync against the plain loop of
its round, two workers against the one of their round (a slow spell of a shared machine then
weighs on both sides of a ratio, or on one round out of five).

The catalog maps a title, a description, the main image, the price and the color of products of
about 14 KB each. Loopback only; it stops by itself.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench import app_env
from launcher import HOST, ROOT, die_with_parent, free_port, start_gunicorn, stop_process

MAPPING = {
    "catalog_enabled": "on",
    "enabled_only": "on",
    "source-title": "name",
    "locale-title": "en_US",
    "source-description": "description",
    "locale-description": "en_US",
    "scope-description": "ecommerce",
    "source-main_image": "image",
    "source-price": "price",
    "source-color": "color",
}


#: a worker's log lines for a job it took, and for a job it ended (whatever the outcome)
JOB_TAKEN = re.compile(r"Task \S+\[[^]]+\] received")
JOB_ENDED = re.compile(r"Task \S+\[[^]]+\] (?:succeeded|raised|failed)")


class Setup:
    """The App under gunicorn and local PIMs in their own processes, on loopback ports."""

    def __init__(
        self,
        workdir: Path,
        products: int,
        pims: int,
        *,
        pim_args: tuple[str, ...] = (),
        events: bool = False,
    ) -> None:
        """`pim_args` go to each local PIM (its pace); with `events`, the App subscribes to the
        first PIM's events (its platform delivers to the App's loopback address)."""
        self.workdir = workdir
        self.client_id, self.secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
        app_port = free_port()
        self.app_url = f"http://{HOST}:{app_port}"
        ports = [free_port() for _ in range(pims)]
        extra = {"AKENEO_SYNC_INTERVAL": "0"}
        if events:
            extra["AKENEO_PUBLIC_URL"] = self.app_url
            extra["AKENEO_EVENT_PLATFORM_URL"] = f"http://{HOST}:{ports[0]}/event-platform/api/v1"
        self.env = app_env(self.client_id, self.secret, workdir, **extra)
        self.pims: list[tuple[str, subprocess.Popen[bytes]]] = []
        for port in ports:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.pim_server", "--port", str(port)]
                + ["--app-url", self.app_url, "--client-id", self.client_id]
                + [f"--client-secret={self.secret}", "--products", str(products), *pim_args],
                cwd=ROOT,
            )
            self.pims.append((f"http://{HOST}:{port}", process))
        self.app = start_gunicorn(app_port, self.env, workers=1, log=workdir / "gunicorn.log")
        self.browsers = [requests.Session() for _ in self.pims]
        for (pim_url, _), browser in zip(self.pims, self.browsers, strict=True):
            _wait_for(pim_url)
            self._connect(browser, pim_url)

    def _connect(self, browser: requests.Session, pim_url: str) -> None:
        """Connect with consent, then configure the catalog as a PIM user would."""
        authorize = browser.get(f"{self.app_url}/activate", params={"pim_url": pim_url})
        form = dict(re.findall(r'name="(scope|state)" value="([^"]*)"', authorize.text))
        home = browser.post(
            f"{pim_url}/connect/apps/v1/authorize", data={**form, "decision": "allow"}
        )
        configure = re.search(r'id="configure" href="([^"]+)"', home.text)
        if not configure:
            raise RuntimeError(f"no catalog on the connected page: {home.text[:300]}")
        saved = requests.post(configure.group(1), data=MAPPING, timeout=30, allow_redirects=False)
        if saved.status_code != 302:
            raise RuntimeError(f"configure {saved.status_code}")

    def workers(self, count: int) -> list[subprocess.Popen[bytes]]:
        """Start `count` workers and return once each says it is ready and no job is left
        (those the connections queued: the event subscription, the UI extensions): the measure
        starts at the sync, not at a worker's boot (about 2 s here, which it once counted) nor
        behind other features' jobs."""
        logs = [self.workdir / f"worker{n}.log" for n in range(count)]
        started = []
        for n, log in enumerate(logs):
            with open(log, "wb") as output:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "celery", "--quiet", "-A", "app.sync.make_celery"]
                        + ["worker", "--pool", "solo", "-n", f"bench{n}@%h"]
                        + ["--without-mingle", "--without-gossip", "--loglevel", "INFO"],
                        cwd=ROOT,
                        env={**os.environ, **self.env},  # the App's own lines stay at WARNING
                        stdout=output,
                        stderr=output,
                        preexec_fn=die_with_parent,
                    )
                )
        deadline = time.monotonic() + 60
        idle_polls = 0  # twice in a row: a job just taken may not be in a log yet
        while idle_polls < 2:
            if time.monotonic() > deadline or any(w.poll() is not None for w in started):
                stop_process(*started)
                raise RuntimeError(f"the workers did not start (see {self.workdir})")
            time.sleep(0.1)
            idle_polls = idle_polls + 1 if self._idle(logs) else 0
        return started

    def _idle(self, logs: list[Path]) -> bool:
        """Every worker ready, every job it took ended, and none waiting in the broker."""
        texts = [log.read_text(errors="replace") for log in logs]
        taken = sum(len(JOB_TAKEN.findall(text)) for text in texts)
        ended = sum(len(JOB_ENDED.findall(text)) for text in texts)
        ready = all(" ready." in text for text in texts)
        return ready and taken == ended and _waiting_jobs(self.workdir / "bench.db") == 0

    def sync_all(self) -> float:
        """Open the connected page and press Sync now on every PIM (a full read), wait until
        all are done; the seconds from the page's visit to the last run's end, as the runs
        recorded it (the polls' interval is not counted).

        The clock starts before the visit: the page itself queues a sync of a catalog enabled
        and never synced (each run's fresh set-up), and Sync now then finds it queued already.
        """
        pressed = datetime.now(UTC)
        tokens = []
        for browser in self.browsers:
            home = browser.get(f"{self.app_url}/")
            found = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
            assert found, home.text[:300]
            tokens.append(found.group(1))
        for browser, token in zip(self.browsers, tokens, strict=True):
            browser.post(f"{self.app_url}/sync", data={"csrf_token": token})
        while True:
            states = [b.get(f"{self.app_url}/sync/status").json() for b in self.browsers]
            if all(not s["active"] for s in states):
                break
            time.sleep(0.2)
        for state in states:
            if state["state"] != "finished":
                raise RuntimeError(f"a sync ended {state['state']}: {state['text']}")
        ended = max(datetime.fromisoformat(s["last_finished_at"]) for s in states)
        seconds = (ended - pressed).total_seconds()
        self.products = sum(s["last_done"] for s in states)
        return seconds

    def read_plainly(self) -> float:
        """Products/s of a plain loop over the same mapped-products pages (requests and json,
        no copy kept): what the sync is measured against."""
        with self.app_context() as (token, catalog_id):
            pim_url = self.pims[0][0]
            url: str | None = (
                f"{pim_url}/api/rest/v1/catalogs/{catalog_id}/mapped-products?limit=100"
            )
            count, started = 0, time.perf_counter()
            with requests.Session() as http:
                while url:
                    page = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
                    page.raise_for_status()
                    body = page.json()
                    count += len(body["_embedded"]["items"])
                    url = body["_links"].get("next", {}).get("href")
            return count / (time.perf_counter() - started)

    @contextmanager
    def app_context(self) -> Iterator[tuple[str, str]]:
        """The first PIM's App token and catalog id, as the App stored them."""
        from app import create_app
        from app import current as core
        from app.catalogs import current as catalogs

        app = create_app(self.env)
        try:
            with app.app_context():
                pim_url = self.pims[0][0]
                connection = core.store().connection(pim_url)
                catalog_id = catalogs.store().catalog_id(pim_url)
                assert connection and catalog_id
                yield connection.access_token, catalog_id
        finally:
            app.extensions["akeneo_database"].close()

    def stop(self) -> None:
        stop_process(self.app)
        for _, process in self.pims:
            process.terminate()
            process.wait(10)


def _waiting_jobs(database: Path) -> int:
    """Jobs not yet taken, in the default broker (kombu's SQL transport, in the App's SQLite)."""
    with closing(sqlite3.connect(database)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM kombu_message WHERE visible").fetchone()[0])
        except sqlite3.OperationalError:  # no job was ever sent: no table yet
            return 0


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """The CPU time (user and system) a process has used so far."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(process: subprocess.Popen[bytes]) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return round(kb / 1024, 1)


def run(products: int, pims: int, workers: int) -> dict[str, Any]:
    """One measured run with fresh workers."""
    with tempfile.TemporaryDirectory(prefix="akeneo-sync-bench-") as folder:
        setup = Setup(Path(folder), products, pims)
        started = setup.workers(workers)
        try:
            cpu_before = [cpu_seconds(worker) for worker in started]
            seconds = setup.sync_all()
            cpu = sum(
                cpu_seconds(w) - before for w, before in zip(started, cpu_before, strict=True)
            )
            rss = [peak_rss_mb(worker) for worker in started]
            plain = setup.read_plainly() if pims == 1 else 0.0
        finally:
            stop_process(*started)
            setup.stop()
    return {
        "pims": pims,
        "workers": workers,
        "products": setup.products,
        "seconds": round(seconds, 2),
        "worker_cpu_ms_per_1000": round(cpu / setup.products * 1_000_000),
        "products_per_s": round(setup.products / seconds, 1),
        "worker_peak_rss_mb": rss,
        "plain_read_products_per_s": round(plain, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds of the runs, one after the other; the ratios are the rounds' medians "
        "(single runs vary by ±15%% on a shared machine)",
    )
    args = parser.parse_args()
    # a small catalog's RSS, to show it does not grow with the catalog
    small = run(min(1000, args.products), 1, 1)
    rounds = [(run(args.products, 1, 1), run(args.products, 2, 2)) for _ in range(args.rounds)]
    out = sys.stdout.write
    out("sync of mapped products (about 14 KB each in the PIM), the default broker\n")
    lines = [("small", small)] + [
        (f"round {n}", row) for n, pair in enumerate(rounds, 1) for row in pair
    ]
    for label, row in lines:
        out(
            f"{label:>7}: {row['workers']} worker(s), {row['pims']} PIM(s), {row['products']:>6} "
            f"products in {row['seconds']:>5.2f} s = {row['products_per_s']:>7} products/s, worker "
            f"peak RSS {', '.join(f'{mb} MB' for mb in row['worker_peak_rss_mb'])}"
            + (
                f"; a plain loop over the same pages: {row['plain_read_products_per_s']}/s"
                if row["plain_read_products_per_s"]
                else ""
            )
            + "\n"
        )
    to_plain = [one["products_per_s"] / one["plain_read_products_per_s"] for one, _ in rounds]
    scaling = [two["products_per_s"] / one["products_per_s"] for one, two in rounds]
    cpu = [(one["worker_cpu_ms_per_1000"], two["worker_cpu_ms_per_1000"]) for one, two in rounds]
    out(
        "the workers' CPU for 1,000 products (the sync's own cost, PIM and App not counted): "
        f"{statistics.median(c for c, _ in cpu):.0f} ms with one worker, "
        f"{statistics.median(c for _, c in cpu):.0f} ms with two\n"
    )
    out(f"sync ÷ plain read: {statistics.median(to_plain):.2f}\n")
    out(f"2 workers ÷ 1 worker: {statistics.median(scaling):.2f}\n")


def _wait_for(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


if __name__ == "__main__":
    main()
