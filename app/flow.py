"""The App activation flow: start() sends the user to the PIM, finish() handles its callback.

Both take the browser session as a plain mapping and the query arguments as given, so the whole
flow reads top to bottom here and is testable without a request. The state, its PIM and its age
travel in the signed session cookie (this browser started it, for that PIM, less than 10 minutes
ago), so /activate writes nothing to the database; the callback that spends a state records its
hash under a unique key, so neither a replayed cookie nor a second worker can use it again.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any, Protocol

from .akeneo import AkeneoClient
from .config import Settings
from .errors import BadRequest, ConfigError, ConnectionCancelled, FlowRefused
from .identity import IdTokenVerifier, User
from .pim_url import PimUrlPolicy
from .store import STATE_TTL, Connection, Store

log = logging.getLogger(__name__)

# session keys
PENDING_STATE = "oauth_state"
PENDING_PIM = "oauth_pim_url"
PENDING_SINCE = "oauth_started"
CONNECTED_PIM = "pim_url"
CONNECTED_USER = "user_sub"
SESSION_ID = "sid"
CSRF_TOKEN = "csrf"

#: how long a signed-in browser stays signed in (sign-out ends it at once)
SESSION_LIFETIME = timedelta(hours=12)

MAX_STATE = 256
MAX_CODE = 1024
MAX_ERROR_TEXT = 300


class Args(Protocol):
    """The query arguments of the callback (werkzeug's MultiDict fits)."""

    def get(self, key: str) -> str | None: ...

    def getlist(self, key: str) -> list[str]: ...


class Flow:
    """Starts and finishes App activations for one App configuration."""

    def __init__(
        self,
        settings: Settings,
        client: AkeneoClient,
        verifier: IdTokenVerifier,
        store: Store,
    ) -> None:
        self.settings = settings
        self.client = client
        self.verifier = verifier
        self.store = store
        self.policy = PimUrlPolicy(settings.pim_allowed_hosts, settings.pim_allow_http)

    def start(self, session: MutableMapping[str, Any], raw_pim_url: str | None) -> str:
        """Check the PIM URL, put a fresh state in the session, return the PIM's authorize URL."""
        self._require_credentials()
        pim_url = self.policy.check(raw_pim_url)
        state = secrets.token_urlsafe(32)  # 256 bits
        session[PENDING_STATE] = state
        session[PENDING_PIM] = pim_url
        session[PENDING_SINCE] = int(time.time())
        log.info("activation started pim=%s", _netloc(pim_url))
        return self.client.authorize_url(pim_url, state, self.settings.scopes)

    def finish(self, session: MutableMapping[str, Any], args: Args) -> Connection:
        """Check the callback, exchange the code, verify the user, store the connection."""
        self._require_credentials()
        for name in ("state", "code", "error", "error_description"):
            if len(args.getlist(name)) > 1:
                raise BadRequest(f"The callback has the parameter {name!r} more than once.")
        state = args.get("state") or ""
        # only a callback that carries this browser's own state may spend it: a forged one (an
        # error link, a wrong state) is refused and leaves the connection in progress alone
        pim_url = _pending_pim(session, state)

        if args.get("error"):
            if pim_url is None:
                raise ConnectionCancelled(
                    "The PIM sent you back without a connection. Nothing was connected; you can "
                    "try again from the PIM."
                )
            self._spend(session, state)
            error = str(args.get("error"))[:60]
            description = str(args.get("error_description") or "")[:MAX_ERROR_TEXT]
            log.info("activation cancelled error=%r", error)  # %r: no forged log lines
            raise ConnectionCancelled(
                f"The PIM answered {error!r}"
                + (f": {description}" if description else "")
                + ". Nothing was connected; you can try again from the PIM.",
                pim_url=pim_url,
            )

        if not session.get(PENDING_STATE):
            raise FlowRefused(
                "This browser has no connection in progress (it may have been started in another "
                "browser, or already finished). Start again from the PIM."
            )
        if pim_url is None:
            raise FlowRefused(
                "The callback's state does not match, or the connection attempt is more than "
                f"{STATE_TTL.seconds // 60} minutes old. Start again from the PIM."
            )
        self._spend(session, state)

        code = args.get("code") or ""
        if not code or len(code) > MAX_CODE:
            raise BadRequest("The callback has no valid authorization code.", pim_url=pim_url)

        # checked again: the host's addresses may have changed since /activate (DNS rebinding)
        pim_url = self.policy.check(pim_url)
        # the code dies after 30 s: exchange it before anything slow
        grant = self.client.exchange_code(pim_url, code)
        user: User | None = None
        if grant.id_token:
            user = self.verifier.verify(
                grant.id_token, pim_url=pim_url, client_id=self.settings.client_id or ""
            )
        connection = self.store.save_connection(pim_url, grant.access_token, grant.scopes, user)
        session_id = secrets.token_urlsafe(32)
        self.store.open_session(session_id, pim_url, user.sub if user else None, SESSION_LIFETIME)
        log.info("activation finished pim=%s user=%s", _netloc(pim_url), "yes" if user else "no")

        # a fresh session after login: nothing from before the connection carries over (fixation)
        session.clear()
        session[SESSION_ID] = session_id
        session[CONNECTED_PIM] = pim_url
        if user:
            session[CONNECTED_USER] = user.sub
        session[CSRF_TOKEN] = secrets.token_urlsafe(32)
        return connection

    def connected_pim(self, session: MutableMapping[str, Any]) -> str | None:
        """The PIM this browser signed in with; None (and a cleared session) once it has ended."""
        session_id, pim_url = session.get(SESSION_ID), session.get(CONNECTED_PIM)
        if not session_id or not pim_url:
            return None
        if self.store.session_pim(str(session_id)) != pim_url:
            session.clear()  # signed out elsewhere, expired, or a copy of an old cookie
            return None
        return str(pim_url)

    def sign_out(self, session: MutableMapping[str, Any]) -> None:
        """End this browser's session for good; the stored connection stays."""
        session_id = session.get(SESSION_ID)
        if session_id:
            self.store.close_session(str(session_id))
        session.clear()

    def _spend(self, session: MutableMapping[str, Any], state: str) -> None:
        for key in (PENDING_STATE, PENDING_PIM, PENDING_SINCE):
            session.pop(key, None)
        if not self.store.spend_state(state):
            raise FlowRefused("This connection attempt was already used. Start again from the PIM.")

    def _require_credentials(self) -> None:
        missing = [
            name
            for name, value in (
                ("AKENEO_CLIENT_ID", self.settings.client_id),
                ("AKENEO_CLIENT_SECRET", self.settings.client_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. Register "
                "the App in your PIM (Connect > App Store > Create an App), then set "
                f"{'it' if len(missing) == 1 else 'both'} from what it shows."
            )


def _pending_pim(session: MutableMapping[str, Any], state: str) -> str | None:
    """The PIM of the connection this browser started, if `state` is its state and still fresh."""
    expected, pim_url = session.get(PENDING_STATE), session.get(PENDING_PIM)
    started = session.get(PENDING_SINCE)
    if not (expected and pim_url and isinstance(started, int)):
        return None
    if not state or len(state) > MAX_STATE or not _same(state, expected):
        return None
    if not 0 <= time.time() - started <= STATE_TTL.total_seconds():
        return None
    return str(pim_url)


def _same(given: str, expected: str) -> bool:
    # constant time: the comparison must not tell an attacker how much of a state was right
    return hmac.compare_digest(given.encode(), str(expected).encode())


def _netloc(pim_url: str) -> str:
    """The host[:port] of a checked PIM origin, for log lines (no URL parsing per request)."""
    return pim_url.partition("://")[2]
