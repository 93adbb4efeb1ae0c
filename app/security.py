"""Browser-facing protections: proxy trust, session cookie flags, security headers, CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import Flask, Response, request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer, want_bytes
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings
from .errors import CsrfRefused
from .flow import CSRF_TOKEN, SESSION_LIFETIME

# the App's forms carry a token and a button: anything bigger is refused (413) unread
MAX_REQUEST_BODY = 64 * 1024

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)


class SafeTextResponse(Response):
    """A response whose text always encodes: a PIM's lone surrogate (half of an emoji, valid
    in JSON) shows as `?` instead of turning the page into a 500."""

    def set_data(self, value: bytes | str) -> None:
        """Encode text to UTF-8, replacing what UTF-8 cannot hold."""
        super().set_data(value.encode("utf-8", "replace") if isinstance(value, str) else value)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with `Secure` set whenever the request came over https,
    and its signer prepared once.

    Flask builds the signer twice a request, and itsdangerous then derives the signing key from
    SECRET_KEY again (an HMAC) and signs through pure-Python HMAC at every cookie. Here the keys
    are derived once, as itsdangerous would ("hmac" derivation), and signed with OpenSSL's HMAC:
    the cookies are byte for byte Flask's own, at a fraction of the cost on every /activate.
    """

    digest_method = staticmethod(hashlib.sha1)  # Flask's SHA-1, as the C constructor

    def __init__(self) -> None:
        self._signers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure on https (direct or via a trusted proxy); plain http on a laptop still works."""
        return request.is_secure

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """The cookie's signer for the App's current keys, made once."""
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        if keys not in self._signers:
            self._signers[keys] = self._signer(keys) if app.secret_key else None
        return self._signers[keys]

    def _signer(self, keys: tuple[str | bytes, ...]) -> URLSafeTimedSerializer:
        salt = self.salt.encode()
        derived = [hmac.new(want_bytes(key), salt, self.digest_method).digest() for key in keys]
        return URLSafeTimedSerializer(
            derived,  # the newest last, as itsdangerous expects
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={"key_derivation": "none", "digest_method": self.digest_method},
        )


def register_security(app: Flask, settings: Settings) -> None:
    """Install proxy trust, the session cookie policy, headers and the CSRF helper on `app`."""
    app.response_class = SafeTextResponse
    if settings.trusted_proxies:
        # only behind a proxy we were told about may X-Forwarded-* decide the scheme and host
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
            x_port=settings.trusted_proxies,
        )
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="akeneo_app_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Lax, not Strict: the PIM's redirect back must carry it
        # no signed cookie is accepted once this old, even if a browser kept it
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # the cookie ends with the session row, 12 h after sign-in: no request makes it longer
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BODY,
    )
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token


# every answer's headers, unless its view set its own (one pass over them, not one per header)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
# pages carry per-user data (and the callback a code): no cache may keep them, unless the view
# said otherwise (a product image: private, for an hour)
NO_STORE = ("Cache-Control", "no-store")
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def _security_headers(response: Response) -> Response:
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    if "content-security-policy" in present:
        # a view with its own policy (a page the PIM frames) says itself who may frame it
        present.add("x-frame-options")
    missing = [pair for pair in SECURITY_HEADERS if pair[0].lower() not in present]
    if request.endpoint != "static" and "cache-control" not in present:
        missing.append(NO_STORE)
    if request.is_secure and "strict-transport-security" not in present:
        missing.append(HSTS)
    headers.extend(missing)
    return response


def csrf_token() -> str:
    """This session's CSRF token, for the hidden field of every form."""
    token = session.get(CSRF_TOKEN)
    if not token:
        token = session[CSRF_TOKEN] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """Refuse a POST whose form token is not this session's."""
    expected = session.get(CSRF_TOKEN)
    given = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(str(expected).encode(), given.encode()):
        raise CsrfRefused("The form was not sent from this App's page. Reload the page and retry.")
