"""The App as deployed: gunicorn with several workers, restarts, over real HTTP on loopback."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devpim import create_devpim
from launcher import HOST, bind, free_port, start_gunicorn, stop_process
from tests.pims import CLIENT_ID, CLIENT_SECRET, SECRET_KEY, run_together

pytestmark = pytest.mark.server


class Deployment:
    """A local PIM in this process and the App under gunicorn, on one shared database."""

    def __init__(self, database_url: str, log: Path, workers: int = 2) -> None:
        self.workers = workers
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
        self.server = start_gunicorn(port, self.env, workers=self.workers, log=self.log)
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


# -- a hostile PIM and hostile requests, against the deployed server ---------------------------


class EndlessChannels:
    """A hostile PIM: its channel list never ends, each page linking to one more, slowly."""

    def __init__(self, pim: Any, pim_url: str, delay: float) -> None:
        self.pim, self.pim_url, self.delay = pim, pim_url, delay
        self.served = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] != "/api/rest/v1/channels":
            return self.pim(environ, start_response)
        self.served += 1
        time.sleep(self.delay)
        number = self.served
        body = {
            "_links": {"next": {"href": f"{self.pim_url}/api/rest/v1/channels?page={number + 1}"}},
            "_embedded": {
                "items": [{"code": f"c{number}_{i}", "x": "y" * 2000} for i in range(10)]
            },
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


def test_an_endless_list_holds_no_thread_for_long(database_url: str, tmp_path: Path) -> None:
    deployment = Deployment(database_url, tmp_path / "gunicorn.log", workers=1)
    endless = EndlessChannels(deployment.pim_server.app, deployment.pim_url, delay=0.2)
    deployment.pim_server.app = endless
    try:
        with requests.Session() as browser:
            callback = to_the_pim(browser, deployment)
            started = time.monotonic()
            page = browser.get(callback, timeout=30)  # lands on the connected page
            assert page.status_code == 200
            assert "more channels than this page reads at once" in page.text
            assert time.monotonic() - started < 10
            assert endless.served == 5
            # four of them at once still leave the worker's threads free soon after
            run_together(*[lambda: browser.get(f"{deployment.app_url}/", timeout=30)] * 4)
            served = endless.served
            assert served == 25
            health = requests.get(f"{deployment.app_url}/healthz", timeout=5)
            assert health.status_code == 200
            time.sleep(1)
            assert endless.served == served  # nothing goes on reading once the page is sent
    finally:
        deployment.stop()


def test_forwarded_headers_are_not_trusted_without_trusted_proxies(
    deployment: Deployment,
) -> None:
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Host": "evil"}
    welcome = requests.get(f"{deployment.app_url}/", headers=forged, timeout=10)
    assert "Strict-Transport-Security" not in welcome.headers
    assert f"{deployment.app_url}/activate" in welcome.text and "https://" not in welcome.text
    activate = requests.get(
        f"{deployment.app_url}/activate",
        params={"pim_url": deployment.pim_url},
        headers=forged,
        allow_redirects=False,
        timeout=10,
    )
    assert "secure" not in activate.headers["Set-Cookie"].lower()


def test_the_access_log_escapes_control_characters(deployment: Deployment) -> None:
    forged = "/x%0d%0a127.0.0.1%20%22GET%20/callback%22%20302%0a%1b[2J"
    requests.get(f"{deployment.app_url}{forged}", timeout=10)
    stop_process(deployment.server)  # type: ignore[arg-type]
    logged = deployment.log.read_text()
    assert '"GET /x\\x0d\\x0a127.0.0.1 \\"GET /callback\\" 302\\x0a\\x1b[2J" 404' in logged
    assert "\x1b" not in logged
    assert not any(line.startswith('127.0.0.1 "GET /callback"') for line in logged.splitlines())
    deployment.start()
