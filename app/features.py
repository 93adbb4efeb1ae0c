"""What a feature (`app/<feature>/`) plugs into: the core's signals, page panels and scopes.

The core imports no feature. A feature's `init_app(app)` registers its blueprint and CLI
commands, subscribes to the signals (`app/signals.py`), adds its panel to the connected page and
the scopes it needs. `create_app()` calls each feature's `init_app` on a line of its own: a copier
drops a feature by deleting that line, its package and its tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_request_context, request

from . import current
from .config import Settings
from .signals import pim_connected, pim_disconnected
from .store import Connection

__all__ = [
    "Panel",
    "add_panel",
    "after_response",
    "panels",
    "pim_connected",
    "pim_disconnected",
    "public_base",
    "require_scopes",
    "RunAfterResponse",
]

PANELS = "akeneo_panels"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Panel:
    """A block of the connected page: its template, and what the template gets as `panel.data`.

    `context(connection)` returns the template's data, or None to show nothing. It may raise
    TokenRevoked: the page then says that the App was disconnected.
    """

    template: str
    context: Callable[[Connection], dict[str, Any] | None]


def add_panel(app: Flask, panel: Panel) -> None:
    """Show `panel` on the connected page, after the panels added before it."""
    app.extensions.setdefault(PANELS, []).append(panel)


def panels() -> list[Panel]:
    """The connected page's panels, in the order the features added them."""
    return list(current_app.extensions.get(PANELS, []))


def require_scopes(app: Flask, scopes: tuple[str, ...]) -> None:
    """Ask the PIM for `scopes` too (unless AKENEO_SCOPES chose every scope itself)."""
    settings: Settings = app.extensions[current.SETTINGS]
    app.extensions[current.SETTINGS] = settings.with_scopes(scopes)


def public_base() -> str | None:
    """The App's public base URL for a PIM or Akeneo's services to call back (no trailing
    slash): AKENEO_PUBLIC_URL; None when it is not set.

    Never the address a request came in on: its Host (or X-Forwarded-Host, behind a proxy that
    passes the client's on) is whatever the caller wrote, and a URL registered in a PIM from it
    would send the PIM's events and the user's extensions to the caller's host."""
    return current.settings().public_url


def after_response(work: Callable[[], None]) -> None:
    """Do `work` once this request's answer is written (at once outside a request), in the
    App's context: what the user need not wait for, such as queueing a job (a few ms on the SQL
    broker, seconds when the broker is down). `work` handles its own failures; anything it
    lets through is logged, since the answer is gone by then."""
    if not has_request_context():
        work()
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def in_app_context() -> None:
        with app.app_context():
            try:
                work()
            except Exception:
                log.exception("work after the answer failed")

    request.environ[AFTER_RESPONSE].append(in_app_context)


AFTER_RESPONSE = "akeneo.after_response"  # the request's works, in its WSGI environ


class RunAfterResponse:
    """WSGI middleware: a request's `after_response` works run once its answer's last byte is
    handed to the server, or when the server closes the answer, whichever comes first.

    Not on close alone: werkzeug's development server (`make run`, `flask run`) skips close()
    when the browser resets the connection as the server drains it, and the works were lost.
    """

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        works: list[Callable[[], None]] = []
        environ[AFTER_RESPONSE] = works
        body = self.wsgi_app(environ, start_response)
        # the view has run: an answer with nothing to do after it goes out as it is
        return _Answer(body, works) if works else body


class _Answer:
    """An answer's body that runs the works once it is written out or closed."""

    def __init__(self, body: Any, works: list[Callable[[], None]]) -> None:
        self.body, self.works = body, works

    def __iter__(self) -> Any:
        yield from self.body
        self._run_works()  # the server asks for more only once the last chunk is written

    def close(self) -> None:
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self._run_works()

    def _run_works(self) -> None:
        while self.works:
            self.works.pop(0)()
