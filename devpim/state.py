"""What the local PIM remembers, in memory: its App, codes, tokens, signing key and user.

It imitates a real Akeneo PIM as Akeneo documents Apps
(https://api.akeneo.com/apps/authentication-and-authorization.html; this project's notes on it,
akeneo-connect.md, sit in the shared/ folder beside the repository). One lock guards it all:
this is a development tool for one person, not a server to scale.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .pace import Pace

AUTHORIZATION_SCOPES = frozenset(
    """
    read_products write_products delete_products read_catalog_structure write_catalog_structure
    read_attribute_options write_attribute_options read_categories write_categories
    read_channel_localization read_channel_settings write_channel_settings read_association_types
    write_association_types read_catalogs write_catalogs delete_catalogs manage_extensions
    """.split()
)
AUTHENTICATION_SCOPES = frozenset({"openid", "profile", "email"})


def _json_bytes(body: Any) -> bytes:
    import json

    return json.dumps(body).encode()


class TokenError(Exception):
    """A refusal of the token endpoint: always HTTP 400 with {"error", "error_description"?}."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.body: dict[str, str] = {"error": error}
        if description:
            self.body["error_description"] = description


@dataclass
class PendingCode:
    """An authorization code: for which scopes, issued when."""

    scopes: frozenset[str]
    issued_at: float


@dataclass
class RegisteredApp:
    """The custom App registered in this PIM: its credentials, URLs and current grant."""

    client_id: str
    client_secret: str
    activate_url: str
    callback_url: str
    name: str = "Flask Akeneo App"
    granted: frozenset[str] | None = None  # None: not connected
    token: str | None = None
    revoked_tokens: set[str] = field(default_factory=set)
    scope_requests: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConnectionAccount:
    """A connection (Connect > Connection settings): credentials for the password grant."""

    client_id: str
    secret: str
    username: str
    password: str


class ConnectionError422(Exception):
    """A refusal of /api/oauth/v1/token: HTTP 422 with {"code": 422, "message": …}."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.body = {"code": 422, "message": message}


@dataclass(frozen=True)
class PimUser:
    """The user logged in to the local PIM."""

    id: str
    firstname: str
    lastname: str
    email: str


def new_signing_key() -> tuple[rsa.RSAPrivateKey, str]:
    """An RSA 2048 key and its self-signed X.509 certificate as PEM, like the PIM's OpenID key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Akeneo PIM")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Fault:
    """An answer a test injects in place of the PIM's: `times` requests to `path` (a prefix)."""

    method: str
    path: str
    status: int | None  # None: the real answer, after `delay`
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int = 1
    delay: float = 0.0


class PimState:
    """The local PIM's memory, and the rules a real PIM applies to Apps."""

    def __init__(
        self,
        pim_url: str,
        app: RegisteredApp,
        user: PimUser,
        *,
        code_ttl: float = 30.0,
        connection: ConnectionAccount | None = None,
        connection_token_ttl: float = 3600.0,
        clock: Any = time.time,
    ) -> None:
        self.pim_url = pim_url
        self.app = app
        self.user = user
        self.code_ttl = code_ttl
        self.connection = connection
        self.connection_token_ttl = connection_token_ttl
        self.clock = clock
        self._connection_tokens: dict[str, float] = {}  # access token -> expires at
        self._refresh_tokens: set[str] = set()
        self.signing_key, self.certificate_pem = new_signing_key()
        self._codes: dict[str, PendingCode] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.pace = Pace()  # how fast its API answers (devpim/pace.py)

    # -- faults, for tests ---------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path: str,
        status: int | None,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` `method` requests under `path` with this (429, 503, slow…)."""
        raw = body if isinstance(body, bytes) else b"" if body is None else _json_bytes(body)
        with self._lock:
            self._faults.append(
                Fault(
                    method,
                    path,
                    status,
                    {"Content-Type": "application/json", **(headers or {})},
                    raw,
                    times,
                    delay,
                )
            )

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The injected fault for this request, if any (each one used `times` times)."""
        with self._lock:
            for fault in self._faults:
                if fault.method == method and path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- authorization ------------------------------------------------------------------------

    @staticmethod
    def grantable(requested: str) -> frozenset[str]:
        """The requested scopes the PIM knows; unknown ones are dropped silently, as a PIM does."""
        return frozenset(requested.split()) & (AUTHORIZATION_SCOPES | AUTHENTICATION_SCOPES)

    def needs_consent(self, scopes: frozenset[str]) -> bool:
        """True when the App is not connected or asks for scopes it was not granted yet."""
        with self._lock:
            return self.app.granted is None or not scopes <= self.app.granted

    def issue_code(self, scopes: frozenset[str]) -> str:
        """Record the user's consent to `scopes` and return a fresh authorization code."""
        code = secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = PendingCode(scopes, self.clock())
        return code

    # -- token endpoint -----------------------------------------------------------------------

    def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer a token request like RequestAccessTokenAction: checks in the real PIM's order."""
        client_id = form.get("client_id")
        code_identifier = form.get("code_identifier")
        challenge = form.get("code_challenge")
        app = self.app
        if client_id and code_identifier and challenge:
            expected = hashlib.sha256((code_identifier + app.client_secret).encode()).hexdigest()
            if client_id != app.client_id or not hmac.compare_digest(expected, challenge):
                raise TokenError("invalid_client")
        if not client_id:
            raise TokenError("invalid_request")
        if client_id != app.client_id:
            raise TokenError("invalid_client")
        code = form.get("code")
        if not code:
            raise TokenError("invalid_request")
        with self._lock:
            pending = self._codes.get(code)
            if pending is None:
                raise TokenError("invalid_grant", "Code is not valid")
            if self.clock() - pending.issued_at > self.code_ttl:
                raise TokenError("invalid_grant", "Code has expired")
            if form.get("grant_type") != "authorization_code":
                raise TokenError("unsupported_grant_type")
            if not code_identifier or not challenge:
                raise TokenError("invalid_request")
            del self._codes[code]  # a used code is gone: a replay gets "Code is not valid"
            token = self._grant(pending.scopes)
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "bearer",
            "scope": " ".join(sorted(pending.scopes)),
        }
        if "openid" in pending.scopes:
            answer["id_token"] = self.id_token(pending.scopes)
        return answer

    def _grant(self, scopes: frozenset[str]) -> str:
        # same scopes again: the same token; other scopes: old tokens die, a new one is issued
        app = self.app
        if app.token is None or app.granted != scopes:
            app.token = secrets.token_urlsafe(64)
        app.granted = scopes
        return app.token

    def id_token(self, scopes: frozenset[str]) -> str:
        """An RS256 id_token with the claims a real PIM puts in it for these scopes."""
        now = self.clock()
        claims: dict[str, Any] = {
            "iss": self.pim_url,
            "jti": str(uuid.uuid4()),
            # pairwise: the same person has a different sub for every App
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.user.id}:{self.app.client_id}")),
            "aud": self.app.client_id,
            "iat": now,
            "exp": now + 3600,
        }
        if "email" in scopes:
            claims.update(email=self.user.email, email_verified=False)
        if "profile" in scopes:
            claims.update(firstname=self.user.firstname, lastname=self.user.lastname)
        return jwt.encode(claims, self.signing_key, algorithm="RS256")

    # -- API access ----------------------------------------------------------------------------

    # -- connections: the password grant -------------------------------------------------------

    def password_token(self, basic: tuple[str, str] | None, body: dict[str, Any]) -> dict[str, Any]:
        """Answer /api/oauth/v1/token: password and refresh_token grants, Basic client auth."""
        account = self.connection
        if account is None or basic != (account.client_id, account.secret):
            raise ConnectionError422(
                'Parameter "client_id" is missing or does not match any client, or secret is '
                "invalid"
            )
        grant = body.get("grant_type")
        with self._lock:
            if grant == "password":
                given = (body.get("username"), body.get("password"))
                if given != (account.username, account.password):
                    raise ConnectionError422("No user found for the given username and password")
            elif grant == "refresh_token":
                refresh = body.get("refresh_token")
                if refresh not in self._refresh_tokens:
                    raise ConnectionError422("Refresh token is invalid or has expired")
                self._refresh_tokens.discard(refresh)  # single use
            else:
                raise ConnectionError422(
                    'Parameter "grant_type" has to be one of "password" or "refresh_token"'
                )
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._connection_tokens[access] = self.clock() + self.connection_token_ttl
            self._refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "expires_in": int(self.connection_token_ttl),
            "token_type": "bearer",
            "scope": None,
            "refresh_token": refresh,
        }

    def expire_connection_tokens(self) -> None:
        """Make every connection access token invalid now (refresh tokens stay valid)."""
        with self._lock:
            self._connection_tokens.clear()

    def check_bearer(self, header: str | None) -> frozenset[str] | tuple[int, str]:
        """The scopes of a valid token, or (401, message) exactly as the real API says it."""
        if not header or not header.startswith("Bearer "):
            return 401, "Authentication is required"
        token = header.removeprefix("Bearer ")
        with self._lock:
            expires_at = self._connection_tokens.get(token)
            if expires_at is not None:
                if self.clock() >= expires_at:
                    return 401, "The access token provided has expired."
                # a connection acts with its user's permissions: here, all of them
                return AUTHORIZATION_SCOPES
            if token in self.app.revoked_tokens:
                return 401, (
                    "The access token provided is invalid. Your app has been disconnected from "
                    "that PIM."
                )
            if token != self.app.token or self.app.granted is None:
                return 401, "The access token provided is invalid."
            return self.app.granted

    def revoke(self) -> None:
        """Disconnect the App, as a PIM user does in Connect > Connected Apps."""
        with self._lock:
            if self.app.token:
                self.app.revoked_tokens.add(self.app.token)
            self.app.token = None
            self.app.granted = None

    def snapshot(self) -> dict[str, Any]:
        """What must outlive a restart of `make run`: the App's grant, token and notices."""
        with self._lock:
            return {
                "granted": sorted(self.app.granted) if self.app.granted is not None else None,
                "token": self.app.token,
                "revoked_tokens": sorted(self.app.revoked_tokens),
                "scope_requests": list(self.app.scope_requests),
            }

    def restore(self, saved: dict[str, Any]) -> None:
        """Take back a snapshot (codes and connection tokens are short-lived: not kept)."""
        with self._lock:
            granted = saved.get("granted")
            self.app.granted = frozenset(granted) if granted is not None else None
            self.app.token = saved.get("token")
            self.app.revoked_tokens = set(saved.get("revoked_tokens", []))
            self.app.scope_requests = list(saved.get("scope_requests", []))

    def request_scopes(self, scopes: str) -> None:
        """Record the App's notice that it needs more scopes (shown on the home page)."""
        with self._lock:
            self.app.scope_requests.append(scopes)
