"""The App as deployed: gunicorn with several workers, restarts, over real HTTP on loopback."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from devpim import create_devpim
from devpim.launch import HOST, bind, free_port, start_gunicorn, stop_process

from .conftest import CLIENT_ID, CLIENT_SECRET, SECRET_KEY, run_together

pytestmark = pytest.mark.server


class Deployment:
    """A local PIM in this process and the App under gunicorn, on one shared database."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.app_url = f"http://{HOST}:{free_port()}"
        self.pim_server = bind(0)
        self.pim_url = f"http://{HOST}:{self.pim_server.server_port}"
        self.pim_server.app = create_devpim(
            {
                "PIM_URL": self.pim_url,
                "APP_CLIENT_ID": CLIENT_ID,
                "APP_CLIENT_SECRET": CLIENT_SECRET,
                "APP_ACTIVATE_URL": f"{self.app_url}/activate",
                "APP_CALLBACK_URL": f"{self.app_url}/callback",
            }
        )
        threading.Thread(target=self.pim_server.serve_forever, daemon=True).start()
        self.env = {
            "AKENEO_CLIENT_ID": CLIENT_ID,
            "AKENEO_CLIENT_SECRET": CLIENT_SECRET,
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": database_url,
            "AKENEO_PIM_ALLOWED_HOSTS": HOST,
            "AKENEO_PIM_ALLOW_HTTP": "1",
        }
        self.log = log
        self.server = self.start()

    def start(self) -> object:
        port = int(urlsplit(self.app_url).port or 0)
        self.server = start_gunicorn(port, self.env, workers=2, log=self.log)
        return self.server

    def restart(self) -> None:
        stop_process(self.server)  # type: ignore[arg-type]
        self.start()

    def stop(self) -> None:
        stop_process(self.server)  # type: ignore[arg-type]
        self.pim_server.shutdown()
        self.pim_server.server_close()


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(database_url, tmp_path / "gunicorn.log")
    yield deployed
    deployed.stop()


def to_the_pim(browser: requests.Session, deployment: Deployment) -> str:
    """Open the App from the PIM and consent; return the callback URL (not yet followed)."""
    activate = browser.get(
        f"{deployment.app_url}/activate",
        params={"pim_url": deployment.pim_url},
        allow_redirects=False,
    )
    authorize = browser.get(activate.headers["Location"], allow_redirects=False)
    if authorize.status_code == 302:  # connected already (by another browser): no screen
        return str(authorize.headers["Location"])
    assert authorize.status_code == 200 and "Allow" in authorize.text
    form = dict(re.findall(r'name="(scope|state)" value="([^"]*)"', authorize.text))
    allowed = browser.post(
        authorize.url.split("?")[0], data={**form, "decision": "allow"}, allow_redirects=False
    )
    return str(allowed.headers["Location"])


def connected_page(browser: requests.Session, deployment: Deployment) -> str:
    return browser.get(f"{deployment.app_url}/").text


def test_many_browsers_connect_through_two_workers(deployment: Deployment) -> None:
    errors: list[str] = []

    def flow() -> None:
        with requests.Session() as browser:
            back = browser.get(to_the_pim(browser, deployment))
            if back.status_code != 200 or "ecommerce" not in back.text:
                errors.append(f"{back.status_code}: {back.text[:200]}")

    run_together(*[flow] * 12)
    assert errors == []


def test_a_restart_between_activate_and_callback_loses_nothing(deployment: Deployment) -> None:
    with requests.Session() as browser:
        callback = to_the_pim(browser, deployment)
        deployment.restart()
        back = browser.get(callback)
        assert back.status_code == 200
        assert "Julia Stark" in back.text
        deployment.restart()
        assert "ecommerce" in connected_page(browser, deployment)
        # a replayed callback after the restarts is still refused
        assert browser.get(callback).status_code == 400


def test_the_access_log_never_holds_the_code(deployment: Deployment) -> None:
    with requests.Session() as browser:
        callback = to_the_pim(browser, deployment)
        code = re.search(r"code=([^&]+)", callback).group(1)  # type: ignore[union-attr]
        browser.get(callback)
    stop_process(deployment.server)  # type: ignore[arg-type]
    logged = deployment.log.read_text()
    assert '"GET /callback" 302' in logged
    assert code not in logged and CLIENT_SECRET not in logged
    deployment.start()
