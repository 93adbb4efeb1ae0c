"""Benchmark: live changes, from a change in the PIM to the App's copy, and the webhook's rate.

    .venv/bin/python -m bench.events

1. Latency: the local set-up of `make run` (the App, the local PIM playing the Event Platform,
   a Celery worker on the App's database as broker). A product is renamed in the local PIM, one
   at a time; the time until the App's copy holds the new name, p50 and p95.
2. Throughput: the App under gunicorn (2 workers × 4 threads), `POST /events` with signed
   product events of distinct ids (signature, dedupe, noted for the workers) driven by wrk,
   beside a trivial route of the same App (`/bench/ceiling`) in the same run as its ceiling.
   Without wrk (Debian: apt-get install wrk), a Python client drives it.

Loopback only; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench import app_env
from bench.sync import MAPPING
from launcher import HOST, free_port, start_gunicorn, start_local, stop_process

RENAMES = 40


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def latency(renames: int) -> dict[str, Any]:
    """Seconds from a rename in the local PIM to the App's copy holding it."""
    with tempfile.TemporaryDirectory(prefix="akeneo-events-bench-") as folder:
        database = Path(folder) / "app.db"
        setup = start_local(
            app_config={
                "DATABASE_URL": f"sqlite:///{database}",
                "AKENEO_SYNC_INTERVAL": "0",
                "LOG_LEVEL": "WARNING",
            },
            worker_dir=Path(folder),
        )
        try:
            pim_url, app_url = setup.pim_urls[0], setup.app_url
            browser = requests.Session()
            authorize = browser.get(f"{app_url}/activate", params={"pim_url": pim_url})
            form = dict(re.findall(r'name="(scope|state)" value="([^"]*)"', authorize.text))
            home = browser.post(
                f"{pim_url}/connect/apps/v1/authorize", data={**form, "decision": "allow"}
            )
            configure = re.search(r'id="configure" href="([^"]+)"', home.text)
            assert configure, home.text[:300]
            requests.post(configure.group(1), data=MAPPING, timeout=30, allow_redirects=False)
            browser.get(f"{app_url}/")  # the page sees the catalog enabled: the first sync
            _wait(lambda: browser.get(f"{app_url}/sync/status").json()["state"] == "finished", 60)
            uuids = _copied(database)
            took: list[float] = []
            for number, product in enumerate(uuids[:renames]):
                title = f"Renamed for the bench {number}"
                started = time.perf_counter()
                requests.post(
                    f"{pim_url}/products/{product}/rename", data={"name": title}, timeout=10
                )
                _wait(lambda: title in _title(database, product), 30)  # noqa: B023
                took.append(time.perf_counter() - started)
        finally:
            setup.stop()
    return {"renames": len(took), "p50_s": percentile(took, 50), "p95_s": percentile(took, 95)}


def _copied(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute("SELECT uuid FROM synced_products ORDER BY uuid")]


def _title(database: Path, product: str) -> str:
    with sqlite3.connect(database, timeout=5) as db:
        row = db.execute("SELECT data FROM synced_products WHERE uuid = ?", (product,)).fetchone()
    return str(json.loads(row[0]).get("title", "")) if row else ""


def _wait(done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.01)


def throughput(seconds: int, database_url: str | None = None) -> dict[str, Any]:
    """Events/s of the webhook, and requests/s of a trivial route of the same App (on SQLite,
    or on `database_url`)."""
    with tempfile.TemporaryDirectory(prefix="akeneo-events-bench-") as folder:
        workdir = Path(folder)
        pim_url, subscription_id, secret = (
            f"http://{HOST}:9",
            str(uuid.uuid4()),
            secrets.token_urlsafe(32),
        )
        env = app_env(
            str(uuid.uuid4()), secrets.token_urlsafe(32), workdir, AKENEO_SYNC_INTERVAL="0"
        )
        if database_url:
            env["DATABASE_URL"] = database_url
        _subscribe(env, pim_url, subscription_id, secret)
        port = free_port()
        server = start_gunicorn(port, env, workers=2, app="bench.ceiling:create_app()")
        try:
            base = f"http://{HOST}:{port}"
            if not shutil.which("wrk"):
                return _python_rate(base, subscription_id, secret)
            script = workdir / "events.lua"
            script.write_text(_lua(subscription_id, secret, per_thread=30_000))
            events = _wrk(base + "/events", seconds, script)
            ceiling = _wrk(base + "/bench/ceiling", seconds)
        finally:
            stop_process(server)
    return {
        "events_per_s": events,
        "ceiling_requests_per_s": ceiling,
        "fraction_of_ceiling": round(events / ceiling, 2) if ceiling else 0.0,
    }


def _subscribe(env: dict[str, str], pim_url: str, subscription_id: str, secret: str) -> None:
    """Store a subscription in the benchmarked App's database, as the subscribe job would."""
    from app import create_app
    from app.events import current

    app = create_app(env)
    with app.app_context():
        current.store().save(
            pim_url,
            subscriber_id=str(uuid.uuid4()),
            subscription_id=subscription_id,
            webhook_url="https://bench.test/events",
            secrets=(secret,),
            notification_secret=secrets.token_urlsafe(32),
        )
    app.extensions["akeneo_database"].close()


def _bodies(subscription_id: str, secret: str, count: int, offset: int) -> list[tuple[str, str]]:
    from app.events.webhook import signature

    products = [str(uuid.uuid4()) for _ in range(500)]  # events come for a few products
    out = []
    for n in range(count):
        body = json.dumps(
            {
                "specversion": "1.0",
                "id": f"bench-{offset + n}-{uuid.uuid4()}",
                "source": "akeneo-event-platform",
                "type": "com.akeneo.pim.v1.product.updated",
                "subject": subscription_id,
                "time": "2026-12-02T10:00:00Z",
                "data": {
                    "product": {"uuid": products[n % len(products)]},
                    "author": {"identifier": "1", "type": "ui"},
                },
            }
        )
        out.append((body, signature(secret, body.encode())))
    return out


def _lua(subscription_id: str, secret: str, per_thread: int) -> str:
    """A wrk script: each thread sends its own events, none twice (no duplicate shortcut)."""
    threads = []
    for thread in range(2):
        pairs = _bodies(subscription_id, secret, per_thread, thread * per_thread)
        rows = ",\n".join(f"{{{json.dumps(body)}, {json.dumps(sig)}}}" for body, sig in pairs)
        threads.append(f"{{\n{rows}\n}}")
    return (
        "local all = {\n" + ",\n".join(threads) + "\n}\n"
        "local count = 0\n"
        "function setup(thread) count = count + 1; thread:set('n', count) end\n"
        "function init(args) events = all[n]; i = 0 end\n"
        "function request()\n"
        "  i = i % #events + 1\n"
        "  local e = events[i]\n"
        "  return wrk.format('POST', nil, {['Content-Type'] = 'application/json',"
        " ['X-AKENEO-SIGNATURE-ALGORITHM'] = 'HmacSHA256',"
        " ['X-AKENEO-SIGNATURE-PRIMARY'] = e[2]}, e[1])\n"
        "end\n"
    )


def _wrk(url: str, seconds: int, script: Path | None = None) -> float:
    command = ["wrk", "-t2", "-c16", f"-d{seconds}s", url]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors and script:
        raise RuntimeError(f"the webhook refused {errors.group(1)} events:\n{output}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return float(found.group(1)) if found else 0.0


def _python_rate(base: str, subscription_id: str, secret: str) -> dict[str, Any]:
    pairs = _bodies(subscription_id, secret, 500, 0)
    with requests.Session() as http:
        started = time.perf_counter()
        for body, sig in pairs:
            answer = http.post(
                f"{base}/events",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-AKENEO-SIGNATURE-ALGORITHM": "HmacSHA256",
                    "X-AKENEO-SIGNATURE-PRIMARY": sig,
                },
            )
            answer.raise_for_status()
        events = len(pairs) / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(500):
            http.get(f"{base}/bench/ceiling", allow_redirects=False)
        ceiling = 500 / (time.perf_counter() - started)
    return {
        "events_per_s": round(events, 1),
        "ceiling_requests_per_s": round(ceiling, 1),
        "fraction_of_ceiling": round(events / ceiling, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__)
    parser.add_argument("--renames", type=int, default=RENAMES)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database-url", help="the webhook's database (default: SQLite)")
    args = parser.parse_args()
    lat = latency(args.renames)
    rate = throughput(args.seconds, args.database_url)
    out = sys.stdout.write
    out("live changes: a rename in the local PIM until the App's copy holds it\n")
    out(
        f"  {lat['renames']} renames, one at a time: p50 {lat['p50_s'] * 1000:.0f} ms, "
        f"p95 {lat['p95_s'] * 1000:.0f} ms\n"
    )
    out("the webhook under gunicorn (2 workers): signature, dedupe, noted for the workers\n")
    out(
        f"  {rate['events_per_s']:.0f} events/s; a trivial route of the same App "
        f"{rate['ceiling_requests_per_s']:.0f} requests/s ({rate['fraction_of_ceiling']:.2f})\n"
    )


if __name__ == "__main__":
    main()
