"""The App activation flow: start() sends the user to the PIM, finish() handles its callback.

Both take the browser session as a plain mapping and the query arguments as given, so the whole
flow reads top to bottom here and is testable without a request. The state lives in two places:
the signed session cookie (this browser started it) and the store (it is used once, in time, for
the PIM it was issued for) — so neither a replayed cookie nor a second worker can reuse it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import MutableMapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from .akeneo import AkeneoClient
from .config import Settings
from .errors import BadRequest, ConfigError, ConnectionCancelled, FlowRefused
from .identity import IdTokenVerifier, User
from .pim_url import PimUrlPolicy
from .store import Connection, Store

log = logging.getLogger(__name__)

# session keys
PENDING_STATE = "oauth_state"
PENDING_PIM = "oauth_pim_url"
CONNECTED_PIM = "pim_url"
CONNECTED_USER = "user_sub"
CSRF_TOKEN = "csrf"

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
        """Check the PIM URL, remember a fresh state, and return the PIM's authorize URL."""
        self._require_credentials()
        pim_url = self.policy.check(raw_pim_url)
        state = secrets.token_urlsafe(32)  # 256 bits
        self.store.add_state(state, pim_url)
        session[PENDING_STATE] = state
        session[PENDING_PIM] = pim_url
        log.info("activation started pim=%s", urlsplit(pim_url).netloc)
        return self.client.authorize_url(pim_url, state, self.settings.scopes)

    def finish(self, session: MutableMapping[str, Any], args: Args) -> Connection:
        """Check the callback, exchange the code, verify the user, store the connection."""
        self._require_credentials()
        for name in ("state", "code", "error", "error_description"):
            if len(args.getlist(name)) > 1:
                raise BadRequest(f"The callback has the parameter {name!r} more than once.")
        # the pending state is spent now, whatever happens next
        expected = session.pop(PENDING_STATE, None)
        pim_url = session.pop(PENDING_PIM, None)
        state = args.get("state") or ""
        error = args.get("error")

        if error:
            if expected and pim_url and _same(state, expected):
                self.store.consume_state(state, pim_url)
            description = str(args.get("error_description") or "")[:MAX_ERROR_TEXT]
            log.info("activation cancelled error=%r", error[:40])  # %r: no forged log lines
            raise ConnectionCancelled(
                f"The PIM answered {str(error)[:60]!r}"
                + (f": {description}" if description else "")
                + ". Nothing was connected; you can try again from the PIM.",
                pim_url=pim_url,
            )

        if not expected or not pim_url:
            raise FlowRefused(
                "This browser has no connection in progress (it may have been started in another "
                "browser, or already finished). Start again from the PIM."
            )
        if not state or len(state) > MAX_STATE or not _same(state, expected):
            raise FlowRefused("The callback's state does not match. Start again from the PIM.")
        if not self.store.consume_state(state, pim_url):
            raise FlowRefused("This connection attempt was already used or has expired.")

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
        log.info(
            "activation finished pim=%s user=%s", urlsplit(pim_url).netloc, "yes" if user else "no"
        )

        # a fresh session after login: nothing from before the connection carries over (fixation)
        session.clear()
        session[CONNECTED_PIM] = pim_url
        if user:
            session[CONNECTED_USER] = user.sub
        session[CSRF_TOKEN] = secrets.token_urlsafe(32)
        return connection

    def _require_credentials(self) -> None:
        if not self.settings.is_configured:
            raise ConfigError(
                "AKENEO_CLIENT_ID and AKENEO_CLIENT_SECRET are not set. Register the App in your "
                "PIM (Connect > App Store > Create an App), then set both from what it shows."
            )


def _same(given: str, expected: str) -> bool:
    # constant time: the comparison must not tell an attacker how much of a state was right
    return hmac.compare_digest(given.encode(), str(expected).encode())
