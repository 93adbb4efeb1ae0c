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

from flask import Flask, Response, after_this_request, current_app, has_request_context, request

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
    slash): AKENEO_PUBLIC_URL, else the address this request came in on (the callback's: the
    ngrok URL when the PIM reached the App through it); None outside a request."""
    configured: str | None = current.settings().public_url
    if configured:
        return configured
    return request.url_root.rstrip("/") if has_request_context() else None


def after_response(work: Callable[[], None]) -> None:
    """Do `work` once this request's answer is sent (at once outside a request), in the App's
    context: what the user need not wait for, such as queueing a job (a few ms on the SQL
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

    @after_this_request
    def when_sent(response: Response) -> Response:
        # the WSGI server closes the answer once it sent the last byte (gunicorn, werkzeug)
        response.call_on_close(in_app_context)
        return response
