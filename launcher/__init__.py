"""Start the App wired to local PIMs (devpim), each on its own loopback port, in threads.

`make run` uses it to give a newcomer a working connection with nothing configured; the browser
tests and the benchmark use it to get the same set-up on free ports. It starts a Celery worker
only when the App has one (its sync feature).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app import create_app
from devpim import create_devpim

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent  # the repository: where gunicorn.conf.py is


class QuietHandler(WSGIRequestHandler):
    """Logs requests without their query string: a callback's query holds the authorization code."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request: which server, method, path, status."""
        label = getattr(self.server, "label", "")
        path = self.path.split("?", 1)[0]
        self.log("info", '%s"%s %s" %s', f"[{label}] " if label else "", self.command, path, code)


def _not_ready(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


BIND_PATIENCE = 3.0  # seconds a busy port is tried again before PortBusy


class PortBusy(OSError):
    """Something already listens on this port."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} is in use")
        self.port = port


def bind(port: int = 0) -> BaseWSGIServer:
    """A threaded server bound on loopback now (port 0: a free one); its app is set later.

    A busy port raises PortBusy (werkzeug would print its own message and exit).
    """
    # a port the last run (or a test's first half) just let go of can take a moment to be free
    deadline = time.monotonic() + BIND_PATIENCE
    while port:
        with socket.socket() as probe:
            # as werkzeug binds: a port in TIME_WAIT is free, one that something listens on not
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
                break
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                if time.monotonic() > deadline:
                    raise PortBusy(port) from None
        time.sleep(0.1)
    return make_server(HOST, port, _not_ready, threaded=True, request_handler=QuietHandler)


@dataclass
class LocalSetup:
    """The App and its local PIMs, running until stop()."""

    app_url: str
    pim_urls: list[str]
    app: Flask
    servers: list[BaseWSGIServer] = field(default_factory=list)
    state_file: Path | None = None
    worker: subprocess.Popen[bytes] | None = None
    #: the App's settings for this set-up (the local PIM's client id and secret among them)
    config: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the worker and every server; keep the PIMs' state if asked to, unless its file
        was deleted meanwhile (`make reset-pim` while it ran: the next start is anew)."""
        if self.worker:
            self.worker.terminate()  # it takes a few seconds to finish: the servers stop meanwhile
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.worker:
            stop_process(self.worker)
        if self.state_file and self.state_file.exists():
            save_state(self.state_file, self.servers[1:])  # the App's server comes first


def save_state(path: Path, pim_servers: Sequence[Any]) -> None:
    """Write the local PIMs' state (with the App's client secret: mode 600), atomically."""
    first = pim_servers[0].app.extensions["devpim"].app
    state = {
        "client_id": first.client_id,
        "client_secret": first.client_secret,
        "pims": [
            {
                "pim": server.app.extensions["devpim"].snapshot(),
                "catalogs": server.app.extensions["devpim_catalogs"].snapshot(),
                "products": server.app.extensions["devpim_catalog"].snapshot(),
                "events": server.app.extensions["devpim_events"].snapshot(),
                "extensions": server.app.extensions["devpim_extensions"].snapshot(),
            }
            for server in pim_servers
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_suffix(".tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(state, file)
    os.replace(draft, path)


def write_settings(path: Path, settings: Mapping[str, str]) -> None:
    """Write `settings` as a .env file (it holds a client secret: mode 600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_suffix(".tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write("# written by `make run`: the local set-up, for the CLI in another shell\n")
        file.writelines(f"{name}={json.dumps(value)}\n" for name, value in settings.items())
    os.replace(draft, path)


def load_state(path: Path | None) -> dict[str, Any]:
    """The saved state, or {} (none yet, or unreadable: the local PIM starts anew)."""
    if path is None or not path.exists():
        return {}
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        return {}
    return saved if isinstance(saved, dict) else {}


def start_local(
    app_port: int = 0,
    pim_ports: Sequence[int] = (0,),
    app_config: Mapping[str, Any] | None = None,
    pim_config: Mapping[str, Any] | None = None,
    state_file: Path | None = None,
    worker_dir: Path | None = None,
) -> LocalSetup:
    """Start local PIMs and the App registered in each of them; return their URLs.

    With a `state_file`, the PIMs keep their state across restarts (the App's credentials, its
    grant and token, catalogs, written products): a restart is not a revocation. With a
    `worker_dir` (for beat's schedule), a Celery worker runs the App's sync jobs, configured as
    the App is.
    """
    servers: list[BaseWSGIServer] = []
    try:
        for port in (app_port, *pim_ports):
            servers.append(bind(port))
    except OSError:
        for server in servers:  # a busy port: free the ones already taken
            server.server_close()
        raise
    app_server, *pim_servers = servers
    # their request lines are mixed in one terminal: each says which server wrote it
    app_server.label = "app"  # type: ignore[attr-defined]
    for index, server in enumerate(pim_servers, start=1):
        server.label = "local PIM" if len(pim_servers) == 1 else f"local PIM {index}"  # type: ignore[attr-defined]
    app_url = f"http://{HOST}:{app_server.server_port}"
    saved = load_state(state_file)
    client_id = str(saved.get("client_id") or uuid.uuid4())
    client_secret = str(saved.get("client_secret") or secrets.token_urlsafe(32))

    for index, server in enumerate(pim_servers):
        server.app = create_devpim(
            {
                "PIM_URL": f"http://{HOST}:{server.server_port}",
                "APP_CLIENT_ID": client_id,
                "APP_CLIENT_SECRET": client_secret,
                "APP_ACTIVATE_URL": f"{app_url}/activate",
                "APP_CALLBACK_URL": f"{app_url}/callback",
                "USER_ID": str(index + 1),
                **(pim_config or {}),
            }
        )
        if index < len(saved.get("pims", [])):
            kept = saved["pims"][index]
            server.app.extensions["devpim"].restore(kept.get("pim", {}))
            server.app.extensions["devpim_catalogs"].restore(kept.get("catalogs", []))
            server.app.extensions["devpim_catalog"].restore(kept.get("products", {}))
            server.app.extensions["devpim_events"].restore(kept.get("events", {}))
            server.app.extensions["devpim_extensions"].restore(kept.get("extensions", []))
    config = {
        "AKENEO_CLIENT_ID": client_id,
        "AKENEO_CLIENT_SECRET": client_secret,
        "AKENEO_PIM_ALLOWED_HOSTS": HOST,
        "AKENEO_PIM_ALLOW_HTTP": "1",
        "LOCAL_PIM_URL": f"http://{HOST}:{pim_servers[0].server_port}",
        # where the local platform delivers events and the local PIM frames the App's tab
        "AKENEO_PUBLIC_URL": app_url,
        # the first local PIM plays the Event Platform too
        "AKENEO_EVENT_PLATFORM_URL": f"http://{HOST}:{pim_servers[0].server_port}"
        "/event-platform/api/v1",
        **(app_config or {}),
    }
    app = create_app(config)
    app_server.app = app
    for server in servers:  # an edited template shows at the next page, with no restart
        cast(Flask, server.app).jinja_env.auto_reload = True
    if state_file:  # at once: a state file deleted while this runs means "start anew"
        save_state(state_file, pim_servers)

    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return LocalSetup(
        app_url=app_url,
        pim_urls=[f"http://{HOST}:{s.server_port}" for s in pim_servers],
        app=app,
        servers=servers,
        state_file=state_file,
        config={k: str(v) for k, v in config.items()},
        worker=start_worker(app, {k: str(v) for k, v in config.items()}, worker_dir)
        if worker_dir and has_worker(app)
        else None,
    )


def has_worker(app: Flask) -> bool:
    """True when the App has Celery jobs to run (its sync feature is there)."""
    return "celery" in app.extensions


def start_worker(app: Flask, env: Mapping[str, str], folder: Path) -> subprocess.Popen[bytes]:
    """A Celery worker with an embedded beat (the periodic sync, the sweep), for one machine.

    In production run `celery -A app.sync.make_celery worker` (as many as you like) and one
    `celery -A app.sync.make_celery beat` instead. It writes to this terminal, and dies with its
    parent.
    """
    # imported here: the launcher runs Apps without the sync feature too
    from app.sync.tasks import declare_queue

    declare_queue(app.extensions["celery"])  # before the worker and the first page race to
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "--quiet", "-A", "app.sync.make_celery", "worker"]
        + ["--beat", "--pool", "threads", "--concurrency", "4"]
        + ["--loglevel", env.get("LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO"]
        + ["--schedule", str(folder / "celerybeat-schedule")],
        cwd=ROOT,
        env={**os.environ, **env},
        # its own session: Ctrl+C in the terminal reaches the launcher only, which stops the worker
        # once (not a second "Warm shutdown" and "Hitting Ctrl+C again…")
        start_new_session=True,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )


def free_port() -> int:
    """A loopback port free right now, below the kernel's ephemeral range.

    A port from the ephemeral range (what binding port 0 gives) can be handed to any outgoing
    connection between now and the moment a server binds it; one below it cannot.
    """
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randrange(max(1024, low - 20_000), low)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise PortBusy(low)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; other systems start theirs higher


def die_with_parent() -> None:
    # Linux: the server gets SIGTERM when the process that started it dies, so none is left behind
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_gunicorn(
    port: int,
    env: Mapping[str, str],
    *,
    workers: int = 2,
    log: Path | None = None,
    app: str = "app:create_app()",
) -> subprocess.Popen[bytes]:
    """The App under gunicorn (gunicorn.conf.py) on a loopback port; returns once it answers."""
    output = open(log, "ab") if log else subprocess.DEVNULL
    try:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app],
            cwd=ROOT,
            env={**os.environ, **env, "BIND": f"{HOST}:{port}", "WEB_CONCURRENCY": str(workers)},
            stdout=output,
            stderr=output,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        if log:
            output.close()  # type: ignore[union-attr]  # the child has its own copy
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode} (see {log})")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not answer /healthz within 30 s")


def stop_process(*servers: subprocess.Popen[bytes]) -> None:
    """Stop servers gracefully (all at once: each may take seconds), then for good."""
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
