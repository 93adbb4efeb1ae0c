"""Logging set-up: levels from the environment, and no secret in any line.

The App's own log lines never hold a code, token or secret (they log the PIM host and outcomes).
The development server logs request lines itself, with their query strings, and a callback's
query holds the authorization code: those values are masked here.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Flask, Response, g, has_request_context, request

from .errors import ConfigError

_SECRET_PARAMS = re.compile(r"((?:^|[?&])(?:code|state|access_token|id_token)=)[^&\s\"]*")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def checked_level(raw: str | None) -> str:
    """LOG_LEVEL, upper-cased; ConfigError with the choices when it is not a level."""
    level = (raw or "INFO").strip().upper()
    if level not in LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {raw!r}.")
    return level


class RequestId(logging.Filter):
    """Give every record the id of the request it was logged in ("-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set record.request_id; always keep the record."""
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class RedactQuery(logging.Filter):
    """Mask the values of code/state/token query parameters in a log record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; always keep it."""
        message = record.getMessage()
        masked = _SECRET_PARAMS.sub(r"\1[hidden]", message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def configure_logging(level: str) -> None:
    """Set the App's log level; give a bare server (gunicorn, flask run) lines with request ids."""
    root = logging.getLogger()
    if not root.handlers:  # leave a host's own logging set-up (pytest, a platform) alone
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RequestId())
        root.addHandler(handler)
    logging.getLogger("app").setLevel(checked_level(level))
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactQuery) for f in werkzeug.filters):
        werkzeug.addFilter(RedactQuery())


def register_request_ids(app: Flask, *, trust_incoming: bool) -> None:
    """Give each request an id (the proxy's X-Request-Id when trusted), logged and echoed back."""

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        trusted = trust_incoming and _REQUEST_ID.match(incoming)
        g.request_id = incoming if trusted else secrets.token_hex(8)

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "-")
        return response


def record_pim_time(seconds: float) -> None:
    """Add a PIM round trip to the current request's total (for Server-Timing)."""
    if has_request_context():
        g.pim_seconds = g.get("pim_seconds", 0.0) + seconds


def register_server_timing(app: Flask) -> None:
    """Answer `Server-Timing: pim;dur=…, app;dur=…`: time in PIM calls, and the App's own."""

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def server_timing(response: Response) -> Response:
        total = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        pim = g.get("pim_seconds", 0.0) * 1000
        response.headers["Server-Timing"] = f"pim;dur={pim:.2f}, app;dur={total - pim:.2f}"
        return response
