"""The extensions feature's tests: the App connected to a local PIM that renders the App's
extensions and POSTs its actions to the App's test client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.catalogs.settings import NAMES as CATALOG_NAMES
from app.extensions import tasks
from app.sync.settings import NAMES as SYNC_NAMES
from devpim.extensions import UiExtensions
from tests.pims import FakePim, PimUser

from ..sync.conftest import enable
from ..sync.helpers import drop_queued, queued_jobs


@pytest.fixture(autouse=True)
def clean_extensions_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AKENEO_PUBLIC_URL", *SYNC_NAMES, *CATALOG_NAMES):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ui(pim: FakePim, client: FlaskClient) -> UiExtensions:
    """The local PIM's extensions; its actions reach the App's test client."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        answer = client.post(urlsplit(url).path, data=body, headers=headers)
        return {"status": answer.status_code, "message": answer.get_json()["message"]}

    pim.app.extensions["devpim_action_post"] = post
    return pim.app.extensions["devpim_extensions"]  # type: ignore[no-any-return]


@pytest.fixture
def placed(app: Flask, client: FlaskClient, pim: FakePim, ui: UiExtensions) -> Iterator[FakePim]:
    """The App connected, its catalog enabled, its extensions placed by the worker's job."""
    PimUser(client, pim).connect()
    enable(pim)
    with app.app_context():
        run_register_jobs()
        yield pim


def run_register_jobs() -> list[int]:
    jobs = queued_jobs(tasks.REGISTER)
    drop_queued()
    return [tasks.register_job(*args) for args in jobs]
