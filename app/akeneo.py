"""The HTTP layer for an Akeneo PIM: the App endpoints (authorize, token, key), send() and call().

It takes plain arguments and returns values; it knows nothing of Flask. Every call has a
connect/read timeout *and* a total deadline, follows no redirect, reads a capped body (1 MB for
the App endpoints, AKENEO_MAX_RESPONSE_MB for the API), keeps to Akeneo's limit of 4 calls in
flight per App, retries what Akeneo says to retry (429 after Retry-After; 5xx and dropped
connections when the method is idempotent), and turns anything that is not the documented answer
into a PimError whose message is safe to show: it names the PIM's error code, never a token, code
or secret.

Why its own retry loop rather than urllib3's Retry: a call made for a web page has a deadline
(the page's time budget), and urllib3 would sleep a PIM's Retry-After whatever the deadline.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

import requests
import urllib3

from .budget import MAX_IN_FLIGHT, CallBudget, LocalBudget
from .errors import PimError, PimTimeout
from .pim_response import PimResponse, checked

log = logging.getLogger(__name__)

USER_AGENT = "akeneo-flask-app/0.1 (python-requests)"
MAX_BODY = 1_000_000  # bytes of an App endpoint's answer (token, key) or of an error's
MAX_API_BODY = 64 * 1024 * 1024  # bytes of an API answer, by default (AKENEO_MAX_RESPONSE_MB)
RETRIES = 4
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After ends the call with a PimHttpError 429
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})  # what Akeneo says to retry
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
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
        max_response_bytes: int = MAX_API_BODY,
        session: requests.Session | None = None,
        on_call: Callable[[float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_id = client_id
        self.max_response_bytes = max_response_bytes
        # calls in flight per PIM host: this process's count until create_app() installs one
        # that all the App's processes share (app/budget.py)
        self.budget: CallBudget = LocalBudget(MAX_IN_FLIGHT)
        self.on_call = on_call  # told the seconds of every PIM round trip (Server-Timing)
        self._client_secret = client_secret
        self.timeout = timeout
        self.sleep = sleep  # how a retry waits (tests record the waits instead)
        self._consent_queries: dict[tuple[str, ...], str] = {}
        # one pooled session per process: keep-alive to the PIM saves a TLS handshake per call
        self.http = session or requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        # an explicit auth that changes nothing: without one, requests applies ~/.netrc to PIM
        # calls, and its password would replace the bearer token (proxies from the env stay)
        self.http.auth = _no_netrc

    def authorize_url(self, pim_url: str, state: str, scopes: tuple[str, ...]) -> str:
        """The PIM page where the user consents to the App's scopes."""
        if scopes not in self._consent_queries:  # the same for every activation: encoded once
            fixed = {"response_type": "code", "client_id": self.client_id or ""}
            self._consent_queries[scopes] = urlencode({**fixed, "scope": " ".join(scopes)})
        # quote(): a state is URL-safe already, and quote() sees so at C speed, where urlencode()
        # walks it in Python (this runs at every /activate)
        consent = self._consent_queries[scopes]
        return f"{pim_url}{AUTHORIZE_PATH}?{consent}&state={quote(state, safe='')}"

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

    def call(self, method: str, pim_url: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """Send one request to a PIM and return its JSON; `kwargs` as for send().

        For the App endpoints (token, key): 1 MB at most, and one retry, not four: a user waits
        on them, with a code that dies in 30 s.
        """
        kwargs.setdefault("max_bytes", MAX_BODY)
        kwargs.setdefault("retries", 1)
        return self.send(method, pim_url, path, what=what, **kwargs).json(what)

    def send(
        self,
        method: str,
        pim_url: str,
        path: str,
        *,
        what: str,
        token: str | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
        sink: BinaryIO | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = RETRIES,
        **kwargs: Any,
    ) -> PimResponse:
        """Send one request to a PIM and return its answer; `what` names it in logs and errors.

        - Within the App's timeout per attempt, and by `deadline` (time.monotonic()) if given.
        - At most `max_bytes` of body (default: the API cap); a 2xx body goes to `sink` if given.
        - At most `budget` calls to one PIM at once, across the App's processes (app/budget.py).
        - Retried: a 429 after its Retry-After (MAX_RETRY_AFTER at most); 408, 5xx and a
          dropped connection with exponential backoff and jitter, for idempotent methods only (a
          POST whose outcome is unknown is never sent twice); `retries` times at most.
        - A 401 to a bearer `token` raises TokenRevoked; any other non-2xx PimHttpError; a
          redirect, a body over the cap or a broken connection PimError; a time-out PimTimeout.
        """
        host = urlsplit(pim_url).netloc
        sent_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            sent_headers["Authorization"] = f"Bearer {token}"
        cap = self.max_response_bytes if max_bytes is None else max_bytes
        idempotent = method.upper() in IDEMPOTENT
        # a retry writes the file again from its start: never after the part a dropped
        # connection left (a sink that cannot be rewound is not retried)
        start = sink.tell() if sink is not None and sink.seekable() else None
        if sink is not None and start is None:
            retries = 0
        for attempt in range(retries + 1):
            if attempt and sink is not None and start is not None:
                sink.seek(start)
                sink.truncate()
            try:
                response = self._attempt(
                    method, pim_url + path, sent_headers, deadline, cap, sink, kwargs
                )
            except _Dropped as dropped:
                log.warning("%s failed pim=%s error=%s", what, host, dropped.kind)
                if (idempotent or dropped.before_sending) and attempt < retries:
                    if self._wait(_backoff(attempt), deadline):
                        continue
                raise PimError(f"The PIM could not be reached ({what}).", pim_url=pim_url) from None
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
            log.info("%s pim=%s status=%s ms=%.0f", what, host, response.status, response.ms)
            if response.status in TRANSIENT and attempt < retries:
                retry_after = response.retry_after
                if response.status == 429 and retry_after is not None:
                    pause = min(retry_after, MAX_RETRY_AFTER)
                elif response.status == 429 or idempotent:
                    pause = _backoff(attempt)
                else:
                    pause = None  # a POST that a gateway failed may have been applied
                if pause is not None and self._wait(pause, deadline):
                    continue
            break
        return checked(response, what=what, pim_url=pim_url, token=token)

    def _attempt(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        deadline: float | None,
        cap: int,
        sink: BinaryIO | None,
        kwargs: dict[str, Any],
    ) -> PimResponse:
        started = time.monotonic()
        timeout = self.timeout if deadline is None else min(self.timeout, deadline - started)
        if timeout <= 0:
            raise requests.Timeout("no time left")
        host = urlsplit(url).netloc
        slot = self.budget.acquire(host, timeout)
        if slot is None:
            raise requests.Timeout("no free slot for this PIM in time")
        try:
            try:
                response = self.http.request(
                    method,
                    url,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                    **kwargs,
                )
            except requests.exceptions.SSLError:
                raise  # an untrusted certificate stays untrusted: no retry
            except requests.ConnectionError as error:
                raise _Dropped(type(error).__name__, before_sending=_never_sent(error)) from None
            with response:
                ok = 200 <= response.status_code < 300
                try:
                    body = _read_capped(
                        response,
                        deadline=started + timeout,
                        cap=cap if ok else MAX_BODY,
                        sink=sink if ok else None,
                    )
                except (requests.ConnectionError, urllib3.exceptions.ProtocolError) as error:
                    raise _Dropped(type(error).__name__, before_sending=False) from None
        finally:
            self._release(host, slot)
        elapsed = time.monotonic() - started
        if self.on_call:
            self.on_call(elapsed)
        return PimResponse(url, response.status_code, response.headers, body, elapsed * 1000)

    def _release(self, host: str, slot: str) -> None:
        try:
            self.budget.release(host, slot)
        except Exception:  # the shared count did not answer: the slot frees itself after `hold`
            log.warning("call slot not given back pim=%s", host, exc_info=True)

    def _wait(self, seconds: float, deadline: float | None) -> bool:
        """Sleep before a retry; False (and no sleep) when the retry would end after deadline."""
        if deadline is not None and time.monotonic() + seconds >= deadline:
            return False
        self.sleep(seconds)
        return True


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class _TooLarge(requests.RequestException):
    """The PIM sent more than the cap."""


class _Dropped(Exception):
    """The connection failed; `before_sending` when the request surely never reached the PIM."""

    def __init__(self, kind: str, *, before_sending: bool) -> None:
        super().__init__(kind)
        self.kind, self.before_sending = kind, before_sending


def _never_sent(error: requests.ConnectionError) -> bool:
    # refused or unreachable while connecting: nothing was sent, so even a POST may try again
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _backoff(attempt: int) -> float:
    # 0.5 s, 1 s, 2 s, 4 s … plus up to half as much again: clients that failed together do
    # not come back together
    base = min(BACKOFF_MAX, BACKOFF_FIRST * float(2**attempt))
    return base + random.uniform(0, base / 2)


def _read_capped(
    response: requests.Response, deadline: float, cap: int, sink: BinaryIO | None = None
) -> bytes:
    """Read the body, refusing more than `cap` bytes or a trickle that outlasts the deadline.

    With a sink, the body is written there as it comes and b"" is returned: a 3 MB media file
    never sits whole in memory.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise requests.Timeout("total deadline passed")
        # read1 returns after one socket read (each bounded by the read timeout), so a PIM that
        # sends a byte at a time is stopped here instead of holding a worker for ever
        chunk = response.raw.read1(65536, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        if sink is not None:
            sink.write(chunk)
        else:
            chunks.append(chunk)
