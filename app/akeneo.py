"""The HTTP layer for an Akeneo PIM: the App endpoints (authorize, token, key) and call().

It takes plain arguments and returns values; it knows nothing of Flask. Every call has a
connect/read timeout *and* a total deadline, follows no redirect, reads at most MAX_BODY bytes,
and turns anything that is not the documented answer into a PimError whose message is safe to
show: it names the PIM's error code, never a token, code or secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from .errors import PimError, PimTimeout, TokenRevoked

log = logging.getLogger(__name__)

USER_AGENT = "akeneo-flask-app/0.1 (python-requests)"
MAX_BODY = 1_000_000  # bytes; a PIM's token, key or API page is far smaller
MAX_TEXT = 200  # characters of a PIM error message shown to the user
MAX_TOKEN = 2048  # characters of an access token (Akeneo's are under 100)
MAX_SCOPE_TEXT = 2000  # characters of the granted scopes (all of Akeneo's fit in 1,000)
_SCOPE = re.compile(r"[a-z_]{1,64}")

AUTHORIZE_PATH = "/connect/apps/v1/authorize"
TOKEN_PATH = "/connect/apps/v1/oauth2/token"
PUBLIC_KEY_PATH = "/connect/apps/v1/openid/public-key"
SCOPES_UPDATE_PATH = "/connect/apps/v1/scopes/update"


@dataclass(frozen=True)
class TokenGrant:
    """What the PIM's token endpoint gives an App."""

    access_token: str
    scopes: tuple[str, ...]
    id_token: str | None

    def __repr__(self) -> str:  # keep tokens out of logs and tracebacks
        return f"TokenGrant(scopes={self.scopes!r}, id_token={'yes' if self.id_token else 'no'})"


def code_challenge(code_identifier: str, client_secret: str) -> str:
    """Akeneo's proof of the client secret: hex SHA-256 of `code_identifier + client_secret`."""
    return hashlib.sha256((code_identifier + client_secret).encode()).hexdigest()


class AkeneoClient:
    """Talks to any PIM on behalf of one App (one client id and secret)."""

    def __init__(
        self,
        client_id: str | None,
        client_secret: str | None,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        on_call: Callable[[float], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self.on_call = on_call  # told the seconds of every PIM round trip (Server-Timing)
        self._client_secret = client_secret
        self.timeout = timeout
        # one pooled session per process: keep-alive to the PIM saves a TLS handshake per call
        self.http = session or requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        # an explicit auth that changes nothing: without one, requests applies ~/.netrc to PIM
        # calls, and its password would replace the bearer token (proxies from the env stay)
        self.http.auth = _no_netrc

    def authorize_url(self, pim_url: str, state: str, scopes: tuple[str, ...]) -> str:
        """The PIM page where the user consents to the App's scopes."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id or "",
                "scope": " ".join(scopes),
                "state": state,
            }
        )
        return f"{pim_url}{AUTHORIZE_PATH}?{query}"

    def exchange_code(self, pim_url: str, code: str) -> TokenGrant:
        """Trade an authorization code for the App's access token (and id_token with openid)."""
        if not (self.client_id and self._client_secret):
            raise PimError("The App has no client id or secret to exchange the code with.")
        code_identifier = secrets.token_hex(32)
        form = {
            "client_id": self.client_id,
            "code": code,
            "grant_type": "authorization_code",
            "code_identifier": code_identifier,
            "code_challenge": code_challenge(code_identifier, self._client_secret),
        }
        body = self.call("POST", pim_url, TOKEN_PATH, data=form, what="token request")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise PimError("The PIM's token answer has no access_token.", pim_url=pim_url)
        if str(body.get("token_type", "bearer")).lower() != "bearer":
            raise PimError("The PIM issued a token that is not a bearer token.", pim_url=pim_url)
        # what the PIM gives is stored and shown: a few KB at most, whatever it sends
        scope = body.get("scope") or ""
        if len(token) > MAX_TOKEN or not isinstance(scope, str) or len(scope) > MAX_SCOPE_TEXT:
            raise PimError("The PIM's token answer is oversized or malformed.", pim_url=pim_url)
        id_token = body.get("id_token")
        return TokenGrant(
            access_token=token,
            scopes=tuple(s for s in scope.split() if _SCOPE.fullmatch(s)),
            id_token=id_token if isinstance(id_token, str) and id_token else None,
        )

    def public_key(self, pim_url: str) -> str:
        """The PEM (certificate or public key) that signs the PIM's id_tokens."""
        body = self.call("GET", pim_url, PUBLIC_KEY_PATH, what="OpenID public key request")
        pem = body.get("public_key") if isinstance(body, dict) else None
        if not isinstance(pem, str) or "-----BEGIN" not in pem:
            raise PimError("The PIM's OpenID public key is not a PEM key.", pim_url=pim_url)
        return pem

    def call(
        self,
        method: str,
        pim_url: str,
        path: str,
        *,
        what: str,
        token: str | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send one request to a PIM and return its JSON; `what` names it in logs and errors.

        The call ends by `deadline` (a time.monotonic() value) when one is given, and within the
        App's timeout anyway. A 401 to a bearer `token` raises TokenRevoked; any other non-2xx, a
        redirect, a body that is not JSON or over MAX_BODY raises PimError; a time-out raises
        PimTimeout.
        """
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        host = urlsplit(pim_url).netloc
        started = time.monotonic()
        timeout = self.timeout if deadline is None else min(self.timeout, deadline - started)
        try:
            if timeout <= 0:
                raise requests.Timeout("no time left")
            response = self.http.request(
                method,
                pim_url + path,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                **kwargs,
            )
            with response:
                raw = _read_capped(response, deadline=started + timeout)
        except _TooLarge:
            log.warning("%s answer too large pim=%s", what, host)
            raise PimError(
                f"The PIM's answer to the {what} is too large.", pim_url=pim_url
            ) from None
        except requests.Timeout:
            log.warning("%s timed out pim=%s", what, host)
            raise PimTimeout(
                f"The PIM did not answer the {what} in time.", pim_url=pim_url
            ) from None
        except requests.RequestException as error:
            log.warning("%s failed pim=%s error=%s", what, host, type(error).__name__)
            raise PimError(f"The PIM could not be reached ({what}).", pim_url=pim_url) from None

        elapsed = time.monotonic() - started
        if self.on_call:
            self.on_call(elapsed)
        log.info(
            "%s pim=%s status=%s ms=%.0f",
            what,
            host,
            response.status_code,
            elapsed * 1000,
        )
        body = _parse_json(raw)
        if response.status_code == 401 and token:
            raise TokenRevoked(
                _pim_message(body) or "The PIM no longer accepts the App's token.", pim_url=pim_url
            )
        if not 200 <= response.status_code < 300:
            detail = _pim_message(body) or "no details"
            if 300 <= response.status_code < 400:
                detail = "it answered with a redirect, which the App does not follow"
            raise PimError(
                f"The PIM refused the {what} (HTTP {response.status_code}): {detail}.",
                pim_url=pim_url,
            )
        if body is _NOT_JSON:
            raise PimError(f"The PIM's answer to the {what} is not JSON.", pim_url=pim_url)
        return body


_NOT_JSON = object()


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class _TooLarge(requests.RequestException):
    """The PIM sent more than MAX_BODY bytes."""


def _read_capped(response: requests.Response, deadline: float) -> bytes:
    """Read the body, refusing more than MAX_BODY bytes or a trickle that outlasts the deadline."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise requests.Timeout("total deadline passed")
        # read1 returns after one socket read (each bounded by the read timeout), so a PIM that
        # sends a byte at a time is stopped here instead of holding a worker for ever
        chunk = response.raw.read1(16384, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _pim_message(body: Any) -> str:
    """The PIM's own words about an error (OAuth `error`, API `message`), shortened and plain."""
    if not isinstance(body, dict):
        return ""
    parts = [body.get("error"), body.get("error_description"), body.get("message")]
    text = " — ".join(str(p) for p in parts if isinstance(p, str | int) and str(p))
    return text[:MAX_TEXT]
