"""The events feature's tests: the App connected to a local PIM that plays the Event Platform
and delivers to the App's webhook in the test's own thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.catalogs.settings import NAMES as CATALOG_NAMES
from app.events import tasks
from app.events.settings import NAMES as EVENT_NAMES
from app.sync.settings import NAMES as SYNC_NAMES
from devpim.events import EventPlatform
from tests.pims import FakePim, PimUser, app_config

from ..sync.conftest import enable
from ..sync.helpers import drop_queued, queued_jobs


@pytest.fixture(autouse=True)
def clean_events_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*EVENT_NAMES, *SYNC_NAMES, *CATALOG_NAMES):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app(tmp_path: Path, pim: FakePim, waits: list[float]) -> Flask:
    app = create(tmp_path, pim)
    app.extensions["akeneo_client"].sleep = waits.append  # retries recorded, not slept
    return app


def create(tmp_path: Path, pim: FakePim, **settings: str | None) -> Flask:
    from app import create_app

    platform_url = f"{pim.url}/event-platform/api/v1"
    return create_app(app_config(tmp_path, AKENEO_EVENT_PLATFORM_URL=platform_url, **settings))


@pytest.fixture
def platform(pim: FakePim, client: FlaskClient) -> EventPlatform:
    """The local PIM's Event Platform, delivering to the App's test client at once."""
    found: EventPlatform = pim.app.extensions["devpim_events"]
    found.inline, found.retry_waits, found.sleep = True, (0.0, 0.0, 0.0), lambda _: None

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return client.post(urlsplit(url).path, data=body, headers=headers).status_code

    found.post = post
    return found


@pytest.fixture
def subscribed(
    app: Flask, client: FlaskClient, pim: FakePim, platform: EventPlatform
) -> Iterator[FakePim]:
    """The App connected, its catalog enabled, the subscription made by the worker's job."""
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        run_subscribe_jobs()
        yield pim


def run_subscribe_jobs() -> list[str]:
    """Play the subscribe jobs queued on the App's broker, as a worker would (and drop every
    queued job: the other features' are played by their own tests)."""
    jobs = queued_jobs(tasks.SUBSCRIBE)
    drop_queued()
    return [tasks.subscribe_job(*args) for args in jobs]
