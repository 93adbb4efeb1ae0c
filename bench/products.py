"""Benchmark: read a catalog of realistic products with the App's API client, against a plain
`requests` loop over the same pages, in the same run.

    .venv/bin/python -m bench.products              # 10,000 products of 10 to 20 KB

A local PIM runs in its own process; each reader runs in a fresh process of its own, so its peak
RSS (after 1,000 products and after all of them) is its own. Both read with search_after, 100 a
page, with the same token. Prints products/s, the ratio client ÷ plain, and the peaks. Loopback
only; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
import uuid
from typing import Any

import requests

# both readers load the App's modules: the heap they make (Flask, SQLAlchemy…) slows every
# garbage collection while a page's JSON is decoded, by up to 2x; only the reading may differ
from app.akeneo import AkeneoClient
from app.api import PimApi
from app.tokens import StaticToken
from launcher import HOST, ROOT, free_port

PRODUCTS = "/api/rest/v1/products-uuid"
FIRST_PAGE = f"{PRODUCTS}?pagination_type=search_after&limit=100"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def read_with_client(pim_url: str, token: str) -> dict[str, Any]:
    """The App's client: PimApi.items(search_after=True)."""
    api = PimApi(pim_url, StaticToken(token), AkeneoClient(None, None, timeout=30))
    return _timed(api.items(PRODUCTS, search_after=True))


def read_plainly(pim_url: str, token: str) -> dict[str, Any]:
    """What a script would write: requests, json, follow `_links.next`."""

    def items() -> Any:
        with requests.Session() as http:
            url: str | None = pim_url + FIRST_PAGE
            while url:
                page = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
                page.raise_for_status()
                body = page.json()
                yield from body["_embedded"]["items"]
                url = body["_links"].get("next", {}).get("href")

    return _timed(items())


def _timed(items: Any) -> dict[str, Any]:
    count, started, rss_at_1000 = 0, time.perf_counter(), 0.0
    for _ in items:
        count += 1
        if count == 1000:
            rss_at_1000 = peak_rss_mb()
    seconds = time.perf_counter() - started
    return {
        "products": count,
        "products_per_s": round(count / seconds, 1),
        "peak_rss_mb_after_1000": rss_at_1000,
        "peak_rss_mb_after_all": peak_rss_mb(),
    }


def run_reader(mode: str, pim_url: str, token: str) -> dict[str, Any]:
    """One reader in a fresh process."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.products", "--reader", mode, pim_url],
        # the token by the environment: not on a command line (`ps`), and a token that starts
        # with "-" is no option for argparse
        env={**os.environ, "BENCH_TOKEN": token},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    return json.loads(output)  # type: ignore[no-any-return]


def main() -> None:
    """Start the PIM, read the catalog with each reader twice (alternately), print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.products", description=__doc__)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reader", nargs=2, metavar=("MODE", "PIM_URL"))  # token: BENCH_TOKEN
    args = parser.parse_args()
    if args.reader:
        mode, pim_url = args.reader
        token = os.environ["BENCH_TOKEN"]
        reader = read_with_client if mode == "client" else read_plainly
        sys.stdout.write(json.dumps(reader(pim_url, token)) + "\n")
        return

    port, secret, password = free_port(), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    pim_url = f"http://{HOST}:{port}"
    connection = f"bench:{secret}:bench-user:{password}"
    pim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.pim_server",
            "--port",
            str(port),
            "--app-url",
            "http://127.0.0.1:9",
            "--client-id",
            str(uuid.uuid4()),
            f"--client-secret={secret}",  # one word: a secret may start with "-"
            "--products",
            str(args.products),
            "--connection",
            connection,
        ],
        cwd=ROOT,
    )
    try:
        token = _password_grant(pim_url, secret, password)
        runs: dict[str, list[dict[str, Any]]] = {"plain": [], "client": []}
        for _ in range(args.rounds):
            for mode in ("plain", "client"):
                runs[mode].append(run_reader(mode, pim_url, token))
    finally:
        pim.terminate()
        pim.wait(10)
    best = {mode: max(r, key=lambda run: run["products_per_s"]) for mode, r in runs.items()}
    ratio = best["client"]["products_per_s"] / best["plain"]["products_per_s"]
    out = sys.stdout.write
    out(f"{args.products} products of about 14 KB, search_after, 100 a page, ")
    out(f"best of {args.rounds}\n")
    for mode in ("plain", "client"):
        row = best[mode]
        out(
            f"{mode:>7}: {row['products_per_s']:>8} products/s  peak RSS "
            f"{row['peak_rss_mb_after_1000']} MB after 1,000, "
            f"{row['peak_rss_mb_after_all']} MB after {row['products']:,}\n"
        )
    out(f"client ÷ plain: {ratio:.2f}\n")


def _password_grant(pim_url: str, secret: str, password: str) -> str:
    for _ in range(100):
        try:
            answer = requests.post(
                f"{pim_url}/api/oauth/v1/token",
                json={"grant_type": "password", "username": "bench-user", "password": password},
                auth=("bench", secret),
                timeout=5,
            )
            return str(answer.json()["access_token"])
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the local PIM did not start")


if __name__ == "__main__":
    main()
