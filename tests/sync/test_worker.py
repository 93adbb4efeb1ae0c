"""The sync on real Celery workers: `celery -A app.sync.make_celery worker` processes, local PIMs
on loopback,
and each broker the App supports: Redis (a real server) and the App's own database (the default).

What a deployment must survive is tested as it happens: a worker killed with SIGKILL half way
(another one finishes, from the saved cursor, with exact counts), two workers and two PIMs at
once (no page read twice, one call at a time per PIM), a catalog disabled mid-sync.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.catalogs import current as catalogs_current
from app.sync import current as sync_current
from app.sync.status import SyncStatus
from launcher import ROOT, bind, die_with_parent
from tests.pims import CLIENT_ID, CLIENT_SECRET, SECRET_KEY, FakePim, PimUser, make_pim

pytestmark = pytest.mark.worker

PRODUCTS = 1500  # 1,350 selected (the enabled ones): 14 pages of mapped products


class Counting:
    """WSGI middleware in front of a local PIM: every request, and how many at once at most."""

    def __init__(self, app: Any) -> None:
        self.app, self.lock = app, threading.Lock()
        self.now = self.most = 0
        self.seen: list[tuple[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.seen.append((environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
        try:
            return list(self.app(environ, start_response))  # the whole answer, counted in flight
        finally:
            with self.lock:
                self.now -= 1

    def mapped_pages(self) -> list[str]:
        return [query for path, query in self.seen if path.endswith("/mapped-products")]


@dataclass
class LocalPim:
    """A local PIM served on a loopback port, and what it was asked."""

    pim: FakePim
    counting: Counting
    server: Any

    @property
    def url(self) -> str:
        return self.pim.url

    def slow_pages(self, seconds: float) -> None:
        """Every mapped-products page takes `seconds` more (a big catalog, a far PIM)."""
        self.pim.state.inject("GET", "/api/rest/v1/catalogs/", None, delay=seconds, times=10_000)


@dataclass
class Deployment:
    """The App (here, for pages), its workers and beat (processes), local PIMs, one broker."""

    root: Path
    env: dict[str, str]
    app: Flask
    pims: list[LocalPim] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_pim(self, user_id: str) -> LocalPim:
        server = bind(0)
        pim = make_pim(
            f"http://127.0.0.1:{server.server_port}", USER_ID=user_id, PRODUCT_COUNT=PRODUCTS
        )
        counting = Counting(pim.app)
        server.app = counting
        threading.Thread(target=server.serve_forever, daemon=True).start()
        local = LocalPim(pim, counting, server)
        self.pims.append(local)
        return local

    def connect(self, local: LocalPim) -> None:
        """A PIM user connects the App, then enables its catalog (enabled products, titles)."""
        PimUser(self.app.test_client(), local.pim).connect()
        (catalog,) = local.pim.app.extensions["devpim_catalogs"].all()
        form = {"catalog_enabled": "on", "enabled_only": "on", "source-title": "name"}
        saved = local.pim.app.test_client().post(
            f"/connect/apps/v1/catalogs/{catalog.id}", data={**form, "locale-title": "en_US"}
        )
        assert saved.status_code == 302

    def start(self, *command: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "app.sync.make_celery", *command],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=log,
            preexec_fn=die_with_parent,
        )
        log.close()
        self.processes.append(process)
        return process

    def worker(self, name: str, pool: str = "solo") -> subprocess.Popen[bytes]:
        """A worker process (solo pool by default: SIGKILL ends it whole, the hardest case)."""
        return self.start(
            "worker", "--pool", pool, "-n", f"{name}@%h", "--without-mingle",
            "--without-gossip", "-l", "INFO", name=name,
        )  # fmt: skip

    def ready(self, *names: str) -> None:
        """Wait until each named worker listens to the broker."""

        def all_ready() -> bool:
            return all("ready." in self.log(name) for name in names)

        self.wait_for(all_ready, 60, f"workers {names} did not start")

    def beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat", "-s", str(self.root / "beat-schedule"), "-l", "INFO", name="beat")

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def status(self, local: LocalPim) -> SyncStatus | None:
        with self.app.app_context():
            return sync_current.store().status(local.url)

    def wait_for(self, check: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        logs = "\n".join(
            f"--- {p.name}\n{self.log(p.stem)[-3000:]}" for p in self.root.glob("*.log")
        )
        pytest.fail(f"{what} within {seconds} s; {[self.status(p) for p in self.pims]}\n{logs}")

    def finished(self, *pims: LocalPim) -> Callable[[], bool]:
        def check() -> bool:
            found = [self.status(p) for p in pims]
            return all(s is not None and s.state == "finished" for s in found)

        return check

    def copied(self, local: LocalPim) -> list[str]:
        with self.app.app_context():
            catalog_id = catalogs_current.store().catalog_id(local.url)
            rows = sync_current.store().products(local.url, str(catalog_id), limit=100_000)
        return [row["uuid"] for row in rows]

    def queue_sync(self, local: LocalPim) -> None:
        from app.sync.tasks import queue_sync

        with self.app.app_context():
            assert queue_sync(local.url)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for local in self.pims:
            local.server.shutdown()
            local.server.server_close()
        current_store = self.app.extensions["akeneo_store"]
        current_store.database.close()


def deployment_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The settings of the App, its workers and beat: local PIMs allowed, no periodic sync (it
    would start runs of its own)."""
    return {
        "TESTING": "1",
        "SECRET_KEY": SECRET_KEY,
        "AKENEO_CLIENT_ID": CLIENT_ID,
        "AKENEO_CLIENT_SECRET": CLIENT_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "AKENEO_PIM_ALLOWED_HOSTS": "127.0.0.1",
        "AKENEO_PIM_ALLOW_HTTP": "1",
        "AKENEO_SYNC_INTERVAL": "0",
        # a dead worker's run goes on within seconds, not 35 (the defaults are 20 s and 15 s)
        "AKENEO_SYNC_LEASE": "8",
        "AKENEO_SYNC_SWEEP": "2",
        **extra,
    }


@pytest.fixture(params=["database", "redis"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """The App with the broker under test: its own database (the default), or Redis."""
    env = deployment_env(tmp_path)
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        env["CELERY_BROKER_URL"] = server.url
        import redis

        redis.Redis.from_url(server.url).flushdb()  # no job of an earlier test
    setup = Deployment(tmp_path, env, create_app(env))
    yield setup
    setup.stop()


def exactly_once(pages: Iterable[str]) -> bool:
    listed = list(pages)
    return len(listed) == len(set(listed))


def test_a_worker_syncs_the_catalog_then_only_what_changed(deployment: Deployment) -> None:
    local = deployment.add_pim("1")
    deployment.connect(local)  # the callback found the catalog disabled: nothing queued yet
    deployment.worker("w1")
    deployment.queue_sync(local)
    deployment.wait_for(deployment.finished(local), 60, "the first sync did not finish")
    assert len(deployment.copied(local)) == 1350 == len(set(deployment.copied(local)))
    assert exactly_once(local.counting.mapped_pages())

    products = local.pim.app.extensions["devpim_catalog"]
    changed = products.seed_uuid(11)
    products.upsert(
        changed, {"values": {"name": [{"locale": "en_US", "scope": None, "data": "New"}]}}
    )
    products.delete(products.seed_uuid(12))
    before = len(local.counting.mapped_pages())
    # as a script would: queue it and wait for the workers
    cli = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "akeneo", "sync", "--wait"],
        cwd=ROOT,
        env={**os.environ, **deployment.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert (
        f"{local.url}  queued" in cli.stdout and "1 changed products read, 1 removed" in cli.stdout
    )
    (incremental,) = local.counting.mapped_pages()[before:]
    assert "updated_after=" in incremental
    copied = deployment.copied(local)
    assert len(copied) == 1349 and products.seed_uuid(12) not in copied
    status = deployment.status(local)
    assert status and (status.last_done, status.last_removed) == (1, 1)


def test_a_worker_killed_mid_sync_is_replaced_and_no_product_is_lost_or_twice(
    deployment: Deployment,
) -> None:
    local = deployment.add_pim("1")
    deployment.connect(local)
    local.slow_pages(0.25)
    first = deployment.worker("w1")
    deployment.beat()  # the sweep: it queues again a run whose worker stopped renewing its lease
    deployment.queue_sync(local)

    def half_way() -> bool:
        status = deployment.status(local)
        return status is not None and status.phase == "products" and 300 <= status.done < 900

    deployment.wait_for(half_way, 60, "the sync did not get half way")
    deployment.worker("w2")
    first.send_signal(signal.SIGKILL)  # no warm shutdown, no ack: gone
    first.wait()
    deployment.wait_for(deployment.finished(local), 120, "no other worker finished the sync")
    copied = deployment.copied(local)
    assert len(copied) == 1350 == len(set(copied))
    first_pages = [q for q in local.counting.mapped_pages() if "search_after" not in q]
    assert len(first_pages) == 1  # the second worker went on from the cursor, not from zero
    assert "sync finished" in deployment.log("w2") and "sync finished" not in deployment.log("w1")
    status = deployment.status(local)
    assert status and status.last_done == 1350  # each page counted once: saved with its cursor


def test_two_workers_two_pims_no_page_twice_and_one_call_at_a_time_per_pim(
    deployment: Deployment,
) -> None:
    pim_a, pim_b = deployment.add_pim("1"), deployment.add_pim("2")
    for local in (pim_a, pim_b):
        deployment.connect(local)
        local.slow_pages(0.02)
    # one after the other: two workers declaring the queue at the same instant race on kombu's
    # SQL transport (UNIQUE kombu_queue.name), and one would never start
    deployment.worker("w1")
    deployment.ready("w1")
    deployment.worker("w2")
    deployment.ready("w2")  # both listen before any job: else the first could take both PIMs'

    deployment.queue_sync(pim_a)
    deployment.queue_sync(pim_b)
    deployment.wait_for(deployment.finished(pim_a, pim_b), 90, "the two syncs did not finish")
    for local in (pim_a, pim_b):
        assert len(deployment.copied(local)) == 1350
        assert exactly_once(local.counting.mapped_pages())
        assert local.counting.most == 1  # one run per PIM, a page at a time: within Akeneo's 4
    # both workers worked: the two PIMs were synced side by side
    assert "sync_step" in deployment.log("w1") and "sync_step" in deployment.log("w2")


def disable_the_catalog(local: LocalPim) -> None:
    (catalog,) = local.pim.app.extensions["devpim_catalogs"].all()
    catalog.enabled = False  # a PIM user disables it in the PIM


def disconnect_the_app(local: LocalPim) -> None:
    assert local.pim.app.test_client().post("/apps/revoke").status_code == 302


@pytest.mark.parametrize(
    ("cause", "said"),
    [
        (disable_the_catalog, "The catalog is disabled"),
        (disconnect_the_app, "The App was disconnected in the PIM"),
    ],
)
def test_a_cause_that_appears_mid_sync_stops_the_run_and_says_why(
    deployment: Deployment, cause: Callable[[LocalPim], None], said: str
) -> None:
    local = deployment.add_pim("1")
    deployment.connect(local)
    local.slow_pages(0.25)
    deployment.worker("w1")
    deployment.queue_sync(local)

    def reading() -> bool:
        status = deployment.status(local)
        return status is not None and status.done >= 200

    deployment.wait_for(reading, 60, "the sync did not start reading")
    cause(local)

    def stopped() -> bool:
        status = deployment.status(local)
        return status is not None and status.state == "stopped"

    deployment.wait_for(stopped, 60, "the sync did not stop")
    status = deployment.status(local)
    assert status and said in (status.message or "")


@pytest.mark.parametrize("pool", ["threads", "prefork"])  # make run's, and the image's
def test_a_broker_restart_mid_sync_needs_no_hand_on_the_workers(
    tmp_path: Path, redis_server: Any, pool: str
) -> None:
    env = deployment_env(tmp_path, CELERY_BROKER_URL=redis_server.url)
    deployment = Deployment(tmp_path, env, create_app(env))
    try:
        local = deployment.add_pim("1")
        deployment.connect(local)
        local.slow_pages(0.25)
        worker = deployment.worker("w1", pool)
        deployment.beat()
        deployment.ready("w1")
        deployment.queue_sync(local)

        def half_way() -> bool:
            status = deployment.status(local)
            return status is not None and status.phase == "products" and 200 <= status.done < 900

        deployment.wait_for(half_way, 60, "the sync did not get half way")
        redis_server.restart()  # the job in progress and the queue are gone with it
        deployment.wait_for(deployment.finished(local), 120, "the sync did not finish")
        assert len(deployment.copied(local)) == 1350
        # the same worker, still there, takes the next sync from the restarted broker
        assert worker.poll() is None and "Unrecoverable" not in deployment.log("w1")
        before = deployment.status(local).last_finished_at  # type: ignore[union-attr]
        deployment.queue_sync(local)
        deployment.wait_for(
            lambda: deployment.status(local).last_finished_at != before,  # type: ignore[union-attr]
            60,
            "the next sync did not finish",
        )
    finally:
        deployment.stop()
