"""Benchmark: complete connection flows through the App under gunicorn, against a local PIM.

    make bench            # or: .venv/bin/python -m bench --flows 300

Prints, for concurrency 1, 8 and 32: flows/s, p50/p95/p99 latency of /activate and /callback,
the callback's time outside PIM calls (the App's own cost, from its Server-Timing header), errors;
then /activate throughput, the PIM alone (authorize + token calls, no App), and each gunicorn
worker's peak RSS. Writes the same to bench/results/latest.json. Loopback only; it stops by itself.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from bench import app_env
from launcher import HOST, ROOT, free_port, start_gunicorn, stop_process

RESULTS = ROOT / "bench" / "results" / "latest.json"


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values, 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def timed_pool(work: Any, count: int, concurrency: int) -> float:
    """Run work(i) for i in range(count), `concurrency` at a time; return the seconds it took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(count)))
    return time.perf_counter() - started


def summary(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    return {f"p{p}": round(percentile(values, p) * 1000, 2) for p in (50, 95, 99)}


class Bench:
    """The App (gunicorn, 2 workers, SQLite) and a local PIM, on loopback ports."""

    def __init__(self, workdir: Path, workers: int) -> None:
        self.client_id, self.secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
        app_port, pim_port = free_port(), free_port()
        self.app_url, self.pim_url = f"http://{HOST}:{app_port}", f"http://{HOST}:{pim_port}"
        self.pim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.pim_server",
                "--port",
                str(pim_port),
                "--app-url",
                self.app_url,
                "--client-id",
                self.client_id,
                # as one word: a secret may start with "-" (token_urlsafe), which argparse would
                # take for an option
                f"--client-secret={self.secret}",
            ],
            cwd=ROOT,
        )
        self.workdir, self.workers = workdir, workers
        # the flows' App reports its time outside PIM calls (Server-Timing); /activate's rate is
        # measured on Apps as deployed, without it (see activate_rate)
        self.app = start_gunicorn(
            app_port,
            app_env(self.client_id, self.secret, workdir, SERVER_TIMING="1"),
            workers=workers,
            log=workdir / "gunicorn.log",
        )
        self._wait_for_pim()

    def _wait_for_pim(self) -> None:
        for _ in range(100):
            try:
                requests.get(self.pim_url, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the local PIM did not start")

    def stop(self) -> None:
        stop_process(self.app)
        self.pim.terminate()
        self.pim.wait(10)

    def worker_rss_mb(self) -> list[float]:
        """Peak resident memory (VmHWM) of each gunicorn worker, in MB."""
        children = Path(f"/proc/{self.app.pid}/task/{self.app.pid}/children").read_text().split()
        peaks = []
        for pid in children:
            status = Path(f"/proc/{pid}/status").read_text()
            kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
            peaks.append(round(kb / 1024, 1))
        return peaks

    # -- one complete flow, as a browser does it -------------------------------------------------

    def connect_once_with_consent(self) -> None:
        """The first connection shows the consent screen; later ones are 'Open app'."""
        with requests.Session() as browser:
            authorize = browser.get(f"{self.app_url}/activate", params={"pim_url": self.pim_url})
            form = dict(re.findall(r'name="(scope|state)" value="([^"]*)"', authorize.text))
            page = browser.post(
                f"{self.pim_url}/connect/apps/v1/authorize", data={**form, "decision": "allow"}
            )
            assert "ecommerce" in page.text, page.text[:300]

    def flow(self, browser: requests.Session) -> dict[str, float]:
        """activate → authorize → callback → connected page (first API call)."""
        browser.cookies.clear()
        started = time.perf_counter()
        activate = browser.get(
            f"{self.app_url}/activate", params={"pim_url": self.pim_url}, allow_redirects=False
        )
        activated = time.perf_counter()
        if activate.status_code != 302:
            raise RuntimeError(f"activate {activate.status_code}")
        authorize = browser.get(activate.headers["Location"], allow_redirects=False)
        if authorize.status_code != 302:
            raise RuntimeError(f"authorize {authorize.status_code}")
        before_callback = time.perf_counter()
        callback = browser.get(authorize.headers["Location"], allow_redirects=False)
        after_callback = time.perf_counter()
        if callback.status_code != 302:
            raise RuntimeError(f"callback {callback.status_code}: {callback.text[:200]}")
        timing = dict(re.findall(r"(\w+);dur=([\d.]+)", callback.headers["Server-Timing"]))
        home = browser.get(f"{self.app_url}/")
        if home.status_code != 200 or "ecommerce" not in home.text:
            raise RuntimeError(f"home {home.status_code}")
        return {
            "activate": activated - started,
            "callback": after_callback - before_callback,
            "callback_app": float(timing["app"]) / 1000,
            "callback_pim": float(timing["pim"]) / 1000,
            "flow": time.perf_counter() - started,
        }

    def run_flows(self, flows: int, concurrency: int) -> dict[str, Any]:
        """`flows` complete flows, `concurrency` at a time."""
        results: list[dict[str, float]] = []
        errors: list[str] = []
        local = threading.local()

        def one(_: int) -> None:
            if not hasattr(local, "browser"):
                local.browser = requests.Session()
            try:
                results.append(self.flow(local.browser))
            except Exception as error:  # counted and shown, never fatal to the run
                errors.append(str(error)[:200])

        elapsed = timed_pool(one, flows, concurrency)
        return {
            "concurrency": concurrency,
            "flows": flows,
            "flows_per_s": round(len(results) / elapsed, 1),
            "activate_ms": summary([r["activate"] for r in results]),
            "callback_ms": summary([r["callback"] for r in results]),
            "callback_app_ms": summary([r["callback_app"] for r in results]),
            "callback_pim_ms": summary([r["callback_pim"] for r in results]),
            "errors": len(errors),
            "first_errors": errors[:3],
        }

    # -- /activate alone, keep-alive connections -------------------------------------------------

    def activate_rate(self, requests_total: int, concurrency: int, rounds: int) -> dict[str, Any]:
        """/activate against two ceilings, in interleaved rounds: requests/s and ratios.

        Three servers under the same gunicorn settings, none with Server-Timing: the App (its
        /activate, and /bench/ceiling, a route of the same App that only sets a session value
        and redirects), and a bare Flask app whose /activate does only that. Each figure is the
        best of its rounds: on a shared machine, slow rounds are other tenants, not the code.
        """
        env = app_env(self.client_id, self.secret, self.workdir)
        app_port, bare_port = free_port(), free_port()
        servers = [
            start_gunicorn(port, env, workers=self.workers, app=f"bench.ceiling:{factory}()")
            for port, factory in ((app_port, "create_app"), (bare_port, "create_bare_app"))
        ]
        app_url, bare_url = f"http://{HOST}:{app_port}", f"http://{HOST}:{bare_port}"
        activate = f"/activate?pim_url={self.pim_url}"
        runs: dict[str, list[dict[str, Any]]] = {"activate": [], "ceiling": [], "bare": []}
        try:
            for _ in range(rounds):  # the machine's moods touch all three alike
                runs["bare"].append(self.rate(bare_url + activate, requests_total, concurrency))
                runs["ceiling"].append(
                    self.rate(app_url + "/bench/ceiling", requests_total, concurrency)
                )
                runs["activate"].append(self.rate(app_url + activate, requests_total, concurrency))
        finally:
            stop_process(*servers)
        best = {name: max(r, key=lambda run: run["requests_per_s"]) for name, r in runs.items()}
        ceiling, bare = best["ceiling"]["requests_per_s"], best["bare"]["requests_per_s"]
        return {
            **best["activate"],
            "rounds": rounds,
            "ceiling_requests_per_s": ceiling,
            "fraction_of_ceiling": round(best["activate"]["requests_per_s"] / ceiling, 3),
            "bare_flask_requests_per_s": bare,
            "fraction_of_bare_flask": round(best["activate"]["requests_per_s"] / bare, 3),
        }

    def rate(self, url: str, requests_total: int, concurrency: int) -> dict[str, Any]:
        """Requests per second of one GET path that answers 302.

        With wrk installed (Debian: apt-get install wrk) it drives the load: a Python client on
        the same two cores tops out near 1,000 requests/s even on a static file.
        """
        # wrk runs for 6 s: for a short run (a test that checks the bench still runs), the
        # Python client sends the few requests asked for
        if shutil.which("wrk") and requests_total >= 1000:
            return self._rate_wrk(url, concurrency)
        target = urlsplit(url)
        path = f"{target.path}?{target.query}" if target.query else target.path
        per_thread = requests_total // concurrency
        latencies: list[float] = []
        errors: list[int] = []

        def hammer() -> None:
            connection = http.client.HTTPConnection(target.netloc, timeout=10)
            for _ in range(per_thread):
                started = time.perf_counter()
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 302:
                    errors.append(response.status)
            connection.close()

        threads = [threading.Thread(target=hammer) for _ in range(concurrency)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        return {
            "client": "python",
            "requests": len(latencies),
            "concurrency": concurrency,
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "latency_ms": summary(latencies),
            "errors": len(errors),
        }

    def _rate_wrk(self, url: str, concurrency: int, seconds: int = 6) -> dict[str, Any]:
        output = subprocess.run(
            ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 30,
        ).stdout

        def number(pattern: str) -> float:
            found = re.search(pattern, output)
            return float(found.group(1)) if found else 0.0

        def ms(percent: int) -> float:
            found = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)\b", output)
            if not found:
                return 0.0
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
            return round(float(found.group(1)) * scale, 2)

        errors = number(r"Non-2xx or 3xx responses: (\d+)") + sum(
            float(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)
        )
        return {
            "client": "wrk",
            "requests": int(number(r"(\d+) requests in")),
            "concurrency": concurrency,
            "requests_per_s": number(r"Requests/sec:\s+([\d.]+)"),
            "latency_ms": {"p50": ms(50), "p90": ms(90), "p99": ms(99)},
            "errors": int(errors),
        }

    # -- the PIM alone: what a flow costs without the App ------------------------------------------

    def pim_alone(self, flows: int, concurrency: int) -> dict[str, Any]:
        """authorize (an immediate code) + token call, straight to the PIM."""
        token_latencies: list[float] = []
        errors: list[str] = []
        local = threading.local()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "scope": "read_channel_settings read_channel_localization openid profile email",
        }

        def one(_: int) -> None:
            if not hasattr(local, "http"):
                local.http = requests.Session()
            authorize = local.http.get(
                f"{self.pim_url}/connect/apps/v1/authorize", params=query, allow_redirects=False
            )
            code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
            identifier = secrets.token_hex(32)
            started = time.perf_counter()
            answer = local.http.post(
                f"{self.pim_url}/connect/apps/v1/oauth2/token",
                data={
                    "client_id": self.client_id,
                    "code": code,
                    "grant_type": "authorization_code",
                    "code_identifier": identifier,
                    "code_challenge": hashlib.sha256(
                        (identifier + self.secret).encode()
                    ).hexdigest(),
                },
            )
            token_latencies.append(time.perf_counter() - started)
            if answer.status_code != 200:
                errors.append(answer.text[:100])

        elapsed = timed_pool(one, flows, concurrency)
        return {
            "concurrency": concurrency,
            "flows": flows,
            "flows_per_s": round(flows / elapsed, 1),
            "token_ms": summary(token_latencies),
            "errors": len(errors),
        }


def main() -> None:
    """Run every measure and print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--flows", type=int, default=300, help="flows per concurrency level")
    parser.add_argument("--activations", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the /activate rates"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--activate-only", action="store_true", help="only /activate against the Flask ceiling"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="akeneo-bench-") as workdir:
        bench = Bench(Path(workdir), args.workers)
        if args.activate_only:
            try:
                bench.connect_once_with_consent()
                sys.stdout.write(
                    json.dumps(bench.activate_rate(args.activations, 32, args.rounds)) + "\n"
                )
            finally:
                bench.stop()
            return
        try:
            bench.connect_once_with_consent()
            bench.run_flows(20, 4)  # warm-up: imports, pools, the key cache
            levels = [bench.run_flows(args.flows, c) for c in (1, 8, 32)]
            activate = bench.activate_rate(args.activations, 32, args.rounds)
            pim_alone = [bench.pim_alone(args.flows, c) for c in (1, 8, 32)]
            rss = bench.worker_rss_mb()
        finally:
            bench.stop()

    report = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "workers": args.workers,
        "flows": levels,
        "activate": activate,
        "pim_alone": pim_alone,
        "worker_peak_rss_mb": rss,
    }
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(f"\nwritten to {args.output}\n")


def print_report(report: dict[str, Any]) -> None:
    """The tables, as plain text."""
    out = sys.stdout.write
    out(
        f"App under gunicorn ({report['workers']} workers), local PIM, "
        f"{report['machine']['cores']} cores, Python {report['machine']['python']}\n\n"
    )
    out("complete flows (activate → authorize → callback → first API call)\n")
    out(
        f"{'conc':>4} {'flows/s':>8} {'activate p50/p95/p99 ms':>26} "
        f"{'callback p50/p95/p99 ms':>26} {'app-only callback p50/p95/p99':>31} {'errors':>6}\n"
    )
    for row in report["flows"]:
        a, c, o = row["activate_ms"], row["callback_ms"], row["callback_app_ms"]
        out(
            f"{row['concurrency']:>4} {row['flows_per_s']:>8} "
            f"{a['p50']:>8}/{a['p95']:>7}/{a['p99']:>8} "
            f"{c['p50']:>8}/{c['p95']:>7}/{c['p99']:>8} "
            f"{o['p50']:>10}/{o['p95']:>8}/{o['p99']:>9} {row['errors']:>6}\n"
        )
    act = report["activate"]
    out(
        f"\n/activate alone ({act['client']} client): {act['requests_per_s']} requests/s at "
        f"concurrency {act['concurrency']} (p50 {act['latency_ms']['p50']} ms, "
        f"errors {act['errors']}); a route of the App that only sets a session value and "
        f"redirects: {act['ceiling_requests_per_s']} requests/s ({act['fraction_of_ceiling']}); "
        f"a bare Flask app doing only that, same gunicorn: {act['bare_flask_requests_per_s']} "
        f"requests/s\n/activate ÷ bare Flask: {act['fraction_of_bare_flask']:.2f}\n"
    )
    out("\nthe PIM alone (authorize + token call, no App)\n")
    for row, app_row in zip(report["pim_alone"], report["flows"], strict=True):
        ratio = app_row["flows_per_s"] / row["flows_per_s"] if row["flows_per_s"] else 0
        out(
            f"{row['concurrency']:>4} {row['flows_per_s']:>8} flows/s  token p50 "
            f"{row['token_ms']['p50']} ms  errors {row['errors']}  "
            f"(App flows/s ÷ PIM flows/s: {ratio:.2f})\n"
        )
    peaks = ", ".join(f"{mb} MB" for mb in report["worker_peak_rss_mb"])
    out(f"\ngunicorn workers' peak RSS: {peaks}\n")


if __name__ == "__main__":
    main()
