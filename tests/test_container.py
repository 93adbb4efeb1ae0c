"""The container, as far as it can be checked without a Docker engine.

The build context is computed the way Docker computes it (moby's patternmatcher: Go's
filepath.Match per path segment, `**` for any number of folders, a pattern that matches a folder
matches what is inside, the last matching pattern wins, `!` lets back in), over the repository
plus the clutter a developer's tree collects. gunicorn.conf.py is read as gunicorn reads it, and
the healthcheck and the start-up error are run for real.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.healthcheck import health_url
from launcher import HOST, ROOT, free_port, start_gunicorn, stop_process
from tests.pims import SECRET_KEY

CLUTTER = [
    ".env",
    ".env.local",
    "app/.env",
    "app/.env.production",
    "app/local.db",
    "app/local.db-wal",
    "app/instance/secret_key",
    "app/__pycache__/config.cpython-312.pyc",
    "instance/akeneo-app.db",
    "instance/secret_key",
    "templates/dev.sqlite3",
    "static/.env.local",
    "static/old.pyc",
    ".venv/bin/python",
    "bench/results/latest.json",
]


def _segment_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over a slash-separated path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        cleaned = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((keep, _segment_regex(cleaned)))
    return rules


def sent_to_docker(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """True when Docker puts `path` in the build context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for keep, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not keep
    return not excluded


def tracked_files() -> list[str]:
    """The project's files, as git lists them (a copy not yet in git: every file but the
    venv's, caches' and instance's)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode == 0:
        return listed.stdout.split()
    skipped = {".git", ".venv", "instance", "__pycache__", ".pytest_cache", ".mypy_cache"}
    return [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*")
        if path.is_file() and not skipped & set(path.relative_to(ROOT).parts)
    ]


def test_the_build_context_holds_what_the_image_needs_and_no_local_file() -> None:
    rules = dockerignore_rules()
    sent = {path for path in tracked_files() + CLUTTER if sent_to_docker(path, rules)}
    needed = {"requirements.lock", "tools/check_install.py", "gunicorn.conf.py", "app/__init__.py"}
    needed.add("app/healthcheck.py")
    needed |= {p for p in tracked_files() if p.split("/")[0] in ("app", "templates", "static")}
    assert needed <= sent
    assert sent.isdisjoint(CLUTTER), sorted(sent & set(CLUTTER))
    assert not {p for p in sent if p.split("/")[0] in ("tests", "devpim", "bench", ".ci")}


def test_the_dockerfile_builds_offline_verifies_hashes_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "# syntax=" not in dockerfile  # BuildKit would fetch a frontend image for it
    assert "--no-deps --require-hashes -r /tmp/requirements.lock" in dockerfile
    assert "check_install.py /tmp/requirements.lock" in dockerfile
    assert dockerfile.index("USER app") < dockerfile.index("CMD [")
    assert (
        'HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["python", ' in dockerfile
    )
    for copy in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.MULTILINE):
        for source in copy.split()[:-1]:
            assert sent_to_docker(source.rstrip("/"), dockerignore_rules()), source


def gunicorn_settings(**environ: str) -> dict[str, Any]:
    """gunicorn.conf.py's names, as gunicorn reads them, under `environ`."""
    saved = dict(os.environ)
    os.environ.update(environ)
    for name in ("TRUSTED_PROXIES", "GRACEFUL_TIMEOUT", "PORT", "BIND"):
        if name not in environ:
            os.environ.pop(name, None)
    try:
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_gunicorn_settings_fit_a_container() -> None:
    settings = gunicorn_settings()
    assert settings["control_socket_disable"] is True  # no socket in a root-owned $HOME
    assert settings["worker_tmp_dir"] == "/dev/shm"  # --read-only needs no --tmpfs /tmp
    assert settings["bind"] == "0.0.0.0:8000"
    assert gunicorn_settings(PORT="9000")["bind"] == "0.0.0.0:9000"
    # a request in flight (10 s on a PIM at most) finishes within the stop grace period
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    grace = int(compose["services"]["app"]["stop_grace_period"].removesuffix("s"))
    assert 10 < settings["graceful_timeout"] < grace
    assert "--stop-timeout 30" in (ROOT / "README.md").read_text()


def test_the_compose_file_starts_the_app_after_a_healthy_database_and_broker() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    app, db = services["app"], services["db"]
    healthy = {"condition": "service_healthy"}
    assert "pg_isready" in db["healthcheck"]["test"]
    assert app["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert app["ports"] == ["127.0.0.1:8000:8000"]
    assert "ports" not in db
    assert "instance:/app/instance" in app["volumes"]
    if not (ROOT / "app" / "sync").is_dir():  # a copy without Celery: no broker to wait for
        assert app["depends_on"] == {"db": healthy} and "redis" not in services
        assert "CELERY_BROKER_URL" not in app["environment"]
        assert set(compose["volumes"]) == {"instance", "pgdata"}
        return
    redis = services["redis"]
    assert app["depends_on"] == {"db": healthy, "redis": healthy}
    assert "ping" in redis["healthcheck"]["test"]
    assert app["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert "ports" not in redis
    assert set(compose["volumes"]) == {"instance", "pgdata", "redisdata"}


# [sync]
def test_the_compose_workers_run_the_same_image_with_the_same_settings() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    app = services["app"]
    for name, role in (("worker", "worker"), ("beat", "beat")):
        service = services[name]
        assert service["command"][:4] == ["celery", "-A", "app.sync.make_celery", role]
        assert service["build"] == app["build"] and service["env_file"] == app["env_file"]
        assert service["environment"] == app["environment"]
        assert service["depends_on"] == app["depends_on"]
        assert "ports" not in service
        assert service["healthcheck"] == {"disable": True}  # the image's checks gunicorn


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, "http://127.0.0.1:8000/healthz"),
        ({"PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        ({"BIND": "127.0.0.1:7000"}, "http://127.0.0.1:7000/healthz"),
        ({"BIND": "0.0.0.0:7001,[::]:7001", "PORT": "1"}, "http://127.0.0.1:7001/healthz"),
    ],
)
def test_the_healthcheck_asks_where_gunicorn_listens(environ: dict[str, str], url: str) -> None:
    assert health_url(environ) == url


@pytest.mark.server
def test_the_healthcheck_is_healthy_on_any_port(tmp_path: Path) -> None:
    port = free_port()
    env = {"SECRET_KEY": SECRET_KEY, "DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
    server = start_gunicorn(port, env, workers=1, log=tmp_path / "gunicorn.log")
    try:

        def check(environ: dict[str, str]) -> int:
            clean = {k: v for k, v in os.environ.items() if k not in ("PORT", "BIND")}
            return subprocess.run(
                [sys.executable, "app/healthcheck.py"], cwd=ROOT, env={**clean, **environ}
            ).returncode

        assert check({"PORT": str(port)}) == 0
        assert check({"BIND": f"{HOST}:{port}"}) == 0
        assert check({"PORT": str(free_port())}) == 1
    finally:
        stop_process(server)
    assert "[ERROR]" not in (tmp_path / "gunicorn.log").read_text()


@pytest.mark.server
def test_an_unwritable_database_is_one_clear_line_from_gunicorn(tmp_path: Path) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "akeneo-app.db").mkdir()  # cannot be opened: as a bad mount
    env = {
        **os.environ,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'akeneo-app.db'}",
        "BIND": f"{HOST}:{free_port()}",
    }
    started = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 1
    assert "Traceback" not in started.stderr
    assert "cannot be opened for writing" in started.stderr
    assert "mount a volume there" in started.stderr


# [/sync]
def test_the_compose_file_needs_no_env_file_on_a_fresh_clone() -> None:
    app = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["app"]
    assert app["env_file"] == [{"path": ".env", "required": False}]
