"""Fixtures: the App, and local PIMs (devpim) that answer its HTTP calls in-process.

Every request the App sends to a PIM goes through `responses` to a real devpim Flask app, so the
tests see exactly what crossed the wire (`pim.requests`) and the PIM answers like a real one. A
test can replace one PIM endpoint's answer (`pim.answer(...)`) to play a broken or hostile PIM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from devpim import create_devpim
from devpim.launch import free_port
from devpim.state import PimState

CLIENT_ID = "4b1e0b5c-app-client-id"
CLIENT_SECRET = "s3cr3t-of-the-app-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789abcdef"
APP_BASE = "http://localhost"

ENVIRONMENT = (
    "AKENEO_CLIENT_ID",
    "AKENEO_CLIENT_SECRET",
    "AKENEO_SCOPES",
    "SECRET_KEY",
    "DATABASE_URL",
    "TOKEN_ENCRYPTION_KEY",
    "AKENEO_PIM_ALLOWED_HOSTS",
    "AKENEO_PIM_ALLOW_HTTP",
    "AKENEO_HTTP_TIMEOUT",
    "AKENEO_MAX_RESPONSE_MB",
    "TRUSTED_PROXIES",
    "LOG_LEVEL",
    "AKENEO_PIM_URL",
    "AKENEO_ACCESS_TOKEN",
    "AKENEO_CONNECTION_CLIENT_ID",
    "AKENEO_CONNECTION_SECRET",
    "AKENEO_CONNECTION_USERNAME",
    "AKENEO_CONNECTION_PASSWORD",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the developer's own configuration."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Recorded:
    """One request the App sent to a PIM."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        """The body, parsed as a form."""
        return parse_qs(self.body.decode())


@dataclass
class FakePim:
    """A local PIM reached by the App over (mocked) HTTP, with its requests recorded."""

    url: str
    app: Flask
    requests: list[Recorded] = field(default_factory=list)
    overrides: dict[tuple[str, str], Callable[[], tuple[int, dict[str, str], bytes]]] = field(
        default_factory=dict
    )

    @property
    def state(self) -> PimState:
        """The PIM's memory: its App registration, tokens, signing key, user."""
        return self.app.extensions["devpim"]  # type: ignore[no-any-return]

    def answer(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        raises: Exception | None = None,
    ) -> None:
        """From now on, answer `method path` with this instead of the real PIM's answer."""

        def respond() -> tuple[int, dict[str, str], bytes]:
            if raises is not None:
                raise raises
            data = raw if raw is not None else json.dumps(body).encode()
            return status, {"Content-Type": content_type}, data

        self.overrides[(method, path)] = respond

    def calls(self, path: str) -> list[Recorded]:
        """The requests the App sent to `path`."""
        return [r for r in self.requests if r.path == path]

    def handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        """The `responses` callback: record the request, answer as the PIM (or the override)."""
        url = urlsplit(request.url or "")
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        self.requests.append(
            Recorded(
                request.method or "", url.path, parse_qs(url.query), dict(request.headers), body
            )
        )
        override = self.overrides.get((request.method or "", url.path))
        if override:
            return override()
        answer = self.app.test_client().open(
            url.path,
            method=request.method,
            query_string=url.query,
            headers=dict(request.headers),
            data=body,
        )
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        return answer.status_code, headers, answer.get_data()


def make_pim(url: str, **config: Any) -> FakePim:
    """A local PIM at `url` in which the test App is registered."""
    pim = create_devpim(
        {
            "PIM_URL": url,
            "APP_CLIENT_ID": CLIENT_ID,
            "APP_CLIENT_SECRET": CLIENT_SECRET,
            "APP_ACTIVATE_URL": f"{APP_BASE}/activate",
            "APP_CALLBACK_URL": f"{APP_BASE}/callback",
            **config,
        }
    )
    return FakePim(url, pim)


@pytest.fixture
def wire() -> Iterator[responses.RequestsMock]:
    """Every outbound HTTP call of the App goes here; an unexpected one fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def plug(wire: responses.RequestsMock, pim: FakePim) -> FakePim:
    """Route the App's calls for `pim.url` to that PIM."""
    pattern = re.compile(re.escape(pim.url) + r"(/.*)?$")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        wire.add_callback(method, pattern, callback=lambda request: pim.handle(request))
    return pim


@pytest.fixture
def pim(wire: responses.RequestsMock) -> FakePim:
    """The PIM most tests connect to."""
    return plug(wire, make_pim("http://pim-a.test", USER_FIRSTNAME="Julia", USER_LASTNAME="Stark"))


@pytest.fixture
def pim_b(wire: responses.RequestsMock) -> FakePim:
    """A second PIM, with another user."""
    return plug(
        wire,
        make_pim(
            "http://pim-b.test",
            USER_ID="2",
            USER_FIRSTNAME="Peter",
            USER_LASTNAME="Parker",
            USER_EMAIL="peter@example.com",
        ),
    )


def app_config(tmp_path: Any, **extra: Any) -> dict[str, Any]:
    """The test App's configuration: its own database file, local PIMs allowed."""
    return {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "AKENEO_CLIENT_ID": CLIENT_ID,
        "AKENEO_CLIENT_SECRET": CLIENT_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "AKENEO_PIM_ALLOWED_HOSTS": "*.test",
        "AKENEO_PIM_ALLOW_HTTP": "1",
        **extra,
    }


@pytest.fixture
def app(tmp_path: Any) -> Flask:
    """The App, configured for the local PIMs."""
    return create_app(app_config(tmp_path))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser on the App."""
    return app.test_client()


class PimUser:
    """Plays the person in the PIM: follows the App's redirect, consents, comes back."""

    def __init__(self, client: FlaskClient, pim: FakePim) -> None:
        self.client = client
        self.pim = pim

    def activate(self) -> str:
        """Open the App from the PIM; return the authorize URL the App sent the browser to."""
        response = self.client.get("/activate", query_string={"pim_url": self.pim.url})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response.headers["Location"]

    def consent(self, authorize_url: str, decision: str = "allow") -> str:
        """Show the PIM's consent screen and click Allow or Cancel; return the callback URL."""
        pim_browser = self.pim.app.test_client()
        url = urlsplit(authorize_url)
        screen = pim_browser.get(url.path, query_string=url.query)
        if screen.status_code == 302:  # already connected: no screen
            return screen.headers["Location"]
        assert screen.status_code == 200, screen.get_data(as_text=True)
        query = parse_qs(url.query)
        granted = " ".join(sorted(self.pim.state.grantable(query.get("scope", [""])[0])))
        form = {"decision": decision, "scope": granted}
        if "state" in query:
            form["state"] = query["state"][0]
        answer = pim_browser.post(url.path, data=form)
        assert answer.status_code == 302
        return answer.headers["Location"]

    def come_back(self, callback_url: str) -> Any:
        """Follow the PIM's redirect to the App's callback."""
        url = urlsplit(callback_url)
        assert f"{url.scheme}://{url.netloc}" == APP_BASE
        return self.client.get(url.path, query_string=url.query)

    def connect(self) -> Any:
        """The whole flow; returns the callback's response."""
        return self.come_back(self.consent(self.activate()))


@pytest.fixture
def user(client: FlaskClient, pim: FakePim) -> PimUser:
    """The person who connects the App to `pim` in `client`."""
    return PimUser(client, pim)


def form_token(html: str) -> str:
    """The CSRF token a page's forms carry (what a browser posts back)."""
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def unavailable(reason: str) -> None:
    """Skip a test that needs a missing tool, except in CI, where a missing tool is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test: .ci/run installs it)", pytrace=False)
    pytest.skip(reason)


class PostgresServer:
    """A throwaway PostgreSQL server on loopback, owned by the test session."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.port = free_port()
        self.data = root / "data"
        # the server refuses to run as root: hand it to the postgres (or nobody) user
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            owner = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(root, owner)
            self.prefix = ["runuser", "-u", owner, "--"]

    def run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "app",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c max_connections=200"
        )
        self.run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.root / "log"),
            "start",
        )

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=app dbname=postgres", autocommit=True
        ) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://app@127.0.0.1:{self.port}/{name}"


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _postgres_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    for initdb in [*candidates, *([Path(found)] if found else [])]:
        if (initdb.parent / "pg_ctl").exists():
            return initdb.resolve().parent
    return None


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (skipped outside CI when it is not installed)."""
    bindir = _postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="akeneo-app-pg-"))
    root.chmod(0o755)
    server = PostgresServer(bindir, root)  # type: ignore[arg-type]
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


class RedisServer:
    """A throwaway Redis server on loopback (no persistence), owned by the test session."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"redis-server did not answer on port {self.port}")
        client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the session (skipped outside CI when it is not installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary)  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres").new_database()  # type: ignore[no-any-return]


def run_together(*calls: Callable[[], object]) -> None:
    """Run the calls in threads at the same time, and wait for all of them."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
