"""Error types the App raises, and the one handler that turns them into pages or JSON.

Every message here is shown to a person: it says what happened and what to do next, and never
carries a secret (client secret, token, authorization code).
"""

from __future__ import annotations

import logging
from typing import Any

import click
from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

MAX_PIM_TEXT = 200  # characters of a PIM's own message kept in an error
MAX_FIELD_ERRORS = 100  # a 422's errors[] kept (Akeneo lists one per invalid value)
NOT_CURED_BY_RECONNECTING = frozenset({404, 405, 406, 409, 413, 415, 422, 429})


class AppError(Exception):
    """An error with an HTTP status and a message fit for the user's eyes."""

    status = 500
    title = "Something went wrong"
    #: the page's badge, when "Error <status>" is not the word for it
    badge: str | None = None
    #: offer a "connect again" link on the error page
    retry = False

    def __init__(self, message: str, *, pim_url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pim_url = pim_url


# click declares `message` Final; AppError sets the same text there: no conflict at run time
class ConfigError(AppError, RuntimeError, click.ClickException):  # type: ignore[misc]
    """The App is missing or has a wrong setting; the sentence says which and how to fix it.

    Raised at start, it is one line and exit code 1 wherever the App starts: gunicorn prints a
    RuntimeError so, `flask` (the CLI) a ClickException, and `make run` catches AppError.
    """

    status = 503
    title = "The App is not configured yet"

    def __init__(self, message: str, *, pim_url: str | None = None) -> None:
        AppError.__init__(self, message, pim_url=pim_url)
        click.ClickException.__init__(self, message)


class BadRequest(AppError):
    """The request itself is wrong (a bad PIM URL, a missing parameter)."""

    status = 400
    title = "This request cannot be used"


class FlowRefused(AppError):
    """The callback does not belong to an authorization this browser started (state check)."""

    status = 400
    title = "This connection attempt is not valid"
    retry = True


class ConnectionCancelled(AppError):
    """The user (or the PIM) cancelled the authorization: not an error of ours, but no token."""

    status = 403
    title = "The connection was cancelled in the PIM"
    badge = "Cancelled"
    retry = True


class PimError(AppError):
    """The PIM answered with an error, or with something that is not what Akeneo documents."""

    status = 502
    title = "The PIM refused or did not answer properly"
    retry = True


class PimHttpError(PimError):
    """The PIM answered an API call with an error status: what it said, for code to branch on.

    `status` stays the App's own answer (502: the PIM refused); the PIM's is `pim_status`, with
    its `pim_message`, the 422 `errors` list and a 429's `retry_after` (seconds).
    """

    def __init__(
        self,
        message: str,
        *,
        pim_url: str | None,
        pim_status: int,
        pim_message: str = "",
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, pim_url=pim_url)
        self.pim_status, self.pim_message = pim_status, pim_message
        self.errors = errors or []
        self.retry_after = retry_after
        # connecting again gives a new code, token or scopes; it cures no missing endpoint, no
        # invalid data and no rate limit: no "Connect again" button for those
        self.retry = pim_status not in NOT_CURED_BY_RECONNECTING

    @classmethod
    def from_answer(
        cls, status: int, body: Any, retry_after: float | None, what: str, pim_url: str
    ) -> PimHttpError:
        """The error for a PIM's non-2xx answer `body` (parsed JSON, or anything else)."""
        words = body if isinstance(body, dict) else {}
        listed = words.get("errors")
        errors = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
        said = pim_message(body)
        detail = said or "no details"
        if status == 404:
            detail = f"{detail} (the PIM has no such resource or endpoint)"
        return cls(
            f"The PIM refused the {what} (HTTP {status}): {detail.rstrip('.')}.",
            pim_url=pim_url,
            pim_status=status,
            pim_message=said,
            errors=errors[:MAX_FIELD_ERRORS],
            retry_after=retry_after,
        )


def pim_message(body: Any) -> str:
    """The PIM's own words about an error (OAuth `error`, API `message`), shortened and plain."""
    if not isinstance(body, dict):
        return ""
    parts = [body.get("error"), body.get("error_description"), body.get("message")]
    text = " — ".join(str(p) for p in parts if isinstance(p, str | int) and str(p))
    return text[:MAX_PIM_TEXT]


class PimTimeout(PimError):
    """The PIM did not answer in time."""

    status = 504
    title = "The PIM did not answer in time"


class TokenRevoked(PimError):
    """The PIM no longer accepts the App's token: the App was disconnected in the PIM."""

    status = 401
    title = "The App was disconnected from this PIM"


class TokenUnreadable(AppError):
    """A stored token no key of the App decrypts any more (TOKEN_ENCRYPTION_KEY or SECRET_KEY
    changed without the old key kept): connecting again stores a new one."""

    status = 409
    title = "The App cannot read its stored token"
    retry = True


class CsrfRefused(AppError):
    """A form was posted without the token of this browser session."""

    status = 400
    title = "This form has expired"


def wants_json() -> bool:
    """True when the caller prefers JSON to HTML (API clients, scripts); browsers get HTML."""
    # on a tie (*/* or nothing) best_match picks the first: HTML
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == (
        "application/json"
    )


def _render(
    status: int,
    title: str,
    message: str,
    *,
    retry: bool,
    pim_url: str | None,
    badge: str | None = None,
) -> Response:
    if wants_json():
        response = jsonify(error=title, message=message, status=status)
    else:
        response = Response(
            render_template(
                "error.html",
                status=status,
                title=title,
                message=message,
                retry=retry,
                pim_url=pim_url,
                badge=badge,
            )
        )
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer AppErrors, HTTP errors and crashes with the App's page (or JSON), never a trace."""

    @app.errorhandler(AppError)
    def app_error(error: AppError) -> Response:
        log.info("refused status=%s reason=%s", error.status, type(error).__name__)
        return _render(
            error.status,
            error.title,
            error.message,
            retry=error.retry,
            pim_url=error.pim_url,
            badge=error.badge,
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        return _render(status, error.name, error.description or "", retry=False, pim_url=None)

    @app.errorhandler(Exception)
    def crash(error: Exception) -> Response:
        # the trace goes to the log (which never holds secrets: see akeneo.py), not to the page
        log.exception("unexpected error")
        return _render(
            500,
            "Internal error",
            "The App failed unexpectedly. The details are in its log.",
            retry=False,
            pim_url=None,
        )
