"""Logging set-up: levels from the environment, and no secret in any line.

The App's own log lines never hold a code, token or secret (they log the PIM host and outcomes).
The development server logs request lines itself, with their query strings, and a callback's
query holds the authorization code: those values are masked here.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"((?:^|[?&])(?:code|state|access_token|id_token)=)[^&\s\"]*")


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
    """Set the App's log level; give a bare `flask run` readable lines without secrets."""
    root = logging.getLogger()
    if not root.handlers:  # leave a host's logging (gunicorn, pytest) alone
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(level)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactQuery) for f in werkzeug.filters):
        werkzeug.addFilter(RedactQuery())
