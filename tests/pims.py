"""Local PIMs (devpim) that answer the App's HTTP calls in-process, and the person who uses them.

Every request the App sends to a PIM goes through `responses` to a real devpim Flask app, so the
tests see exactly what crossed the wire (`pim.requests`) and the PIM answers like a real one. A
test can replace one PIM endpoint's answer (`pim.answer(...)`) to play a broken or hostile PIM.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from devpim import create_devpim
from devpim.state import PimState

CLIENT_ID = "4b1e0b5c-app-client-id"
CLIENT_SECRET = "s3cr3t-of-the-app-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789abcdef"
APP_BASE = "http://localhost"


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


def plug(wire: responses.RequestsMock, pim: FakePim) -> FakePim:
    """Route the App's calls for `pim.url` to that PIM."""
    pattern = re.compile(re.escape(pim.url) + r"(/.*)?$")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        wire.add_callback(method, pattern, callback=lambda request: pim.handle(request))
    return pim


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
        "AKENEO_PUBLIC_URL": APP_BASE,
        **extra,
    }


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


def asked_scopes(app: Flask) -> tuple[str, ...]:
    """The scopes the App asks for: the core's defaults and those its features added."""
    return app.extensions["akeneo_settings"].scopes  # type: ignore[no-any-return]


def form_token(html: str) -> str:
    """The CSRF token a page's forms carry (what a browser posts back)."""
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def run_together(*calls: Callable[[], object]) -> None:
    """Run the calls in threads at the same time, and wait for all of them."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
