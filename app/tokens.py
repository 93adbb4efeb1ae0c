"""Where an API token comes from. Code that calls the PIM asks a TokenSource and never cares which.

- AppToken: the token a PIM gave this App at activation (stored per PIM, never expires, revocable);
- PasswordGrantToken: an API connection's password grant (Connect > Connection settings),
  refreshed shortly before it expires and once after a 401, one refresh at a time, tokens
  encrypted in the store;
- StaticToken: a bearer token handed over in the environment (AKENEO_ACCESS_TOKEN).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from requests.auth import HTTPBasicAuth

from .akeneo import AkeneoClient
from .config import ConnectionCredentials
from .errors import AppError, PimError, PimTimeout
from .grants import PasswordGrantTokens
from .store import Store

log = logging.getLogger(__name__)

PASSWORD_GRANT_PATH = "/api/oauth/v1/token"
# refresh this long before the PIM's expiry (a real PIM gives 3600 s): no call meets an old token
REFRESH_MARGIN = 60.0


class TokenSource(Protocol):
    """Gives the bearer token for one PIM, and says whether a refused one can be replaced."""

    def token(self) -> str:
        """A token to send now."""
        ...

    def refused(self, token: str) -> bool:
        """The PIM answered 401 to `token`: True when token() may now give a better one."""
        ...


class NotConnected(AppError):
    """No usable App token is stored for this PIM."""

    status = 409
    title = "The App is not connected to this PIM"
    retry = True


class AppToken:
    """The App token stored for a connected PIM, read (and decrypted) once per use: a page, a
    job's step. A refused token is checked against the store before it is called revoked."""

    def __init__(
        self, store: Store, pim_url: str, on_revoked: Callable[[str], None] | None = None
    ) -> None:
        self.store, self.pim_url, self.on_revoked = store, pim_url, on_revoked
        self._token: str | None = None

    def token(self) -> str:
        """The stored token; NotConnected when there is none or the PIM revoked it."""
        if self._token is None:
            connection = self.store.connection(self.pim_url)
            if connection is None:
                raise NotConnected(
                    f"The App is not connected to {self.pim_url}: connect it from the PIM.",
                    pim_url=self.pim_url,
                )
            if connection.revoked:
                raise NotConnected(
                    f"{self.pim_url} revoked the App's token: connect it again.",
                    pim_url=self.pim_url,
                )
            self._token = connection.access_token
        return self._token

    def refused(self, token: str) -> bool:
        """App tokens never expire: a 401 means the App was disconnected, unless it was
        connected again since `token` was read (True: the new token gets a try). Remember a
        revocation (and say it once, to `on_revoked`)."""
        self._token = None
        stored = self.store.connection(self.pim_url)
        if stored is not None and not stored.revoked and stored.access_token != token:
            return True
        if self.store.mark_revoked(self.pim_url) and self.on_revoked:
            self.on_revoked(self.pim_url)
        return False


@dataclass(frozen=True)
class StaticToken:
    """A token given as is; nothing can replace it."""

    value: str

    def __repr__(self) -> str:
        return "StaticToken(***)"

    def token(self) -> str:
        """The given token."""
        return self.value

    def refused(self, token: str) -> bool:
        """Nothing to renew."""
        return False


class PasswordGrantToken:
    """Password-grant tokens of a connection, refreshed before they expire."""

    def __init__(
        self,
        client: AkeneoClient,
        store: Store,
        pim_url: str,
        credentials: ConnectionCredentials,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.store, self.pim_url = client, store, pim_url
        self.credentials = credentials
        self.clock = clock
        self.key = f"{pim_url}|{credentials.client_id}|{credentials.username}"
        self._lock = threading.Lock()

    def token(self) -> str:
        """A token valid for at least REFRESH_MARGIN more seconds, renewing it when needed."""
        current = self.store.grants.get(self.key)
        if current and current.expires_at - REFRESH_MARGIN > self.clock():
            return current.access_token
        with self._lock:  # one refresh at a time; the others use its result
            current = self.store.grants.get(self.key)
            if current and current.expires_at - REFRESH_MARGIN > self.clock():
                return current.access_token
            return self._renew(current).access_token

    def refused(self, token: str) -> bool:
        """A 401 before the expiry we were told: renew once (unless another thread already did)."""
        with self._lock:
            current = self.store.grants.get(self.key)
            if current is None or current.access_token == token:
                self._renew(current)
        return True

    def _renew(self, current: PasswordGrantTokens | None) -> PasswordGrantTokens:
        if current and current.refresh_token:
            try:
                return self._grant(
                    {"grant_type": "refresh_token", "refresh_token": current.refresh_token},
                    "refresh",
                )
            except PimTimeout:
                raise  # a slow PIM says nothing about the refresh token
            except PimError:
                # refresh tokens are single use and expire: start again with the password
                log.info("refresh refused pim=%s: password grant", urlsplit(self.pim_url).netloc)
        return self._grant(
            {
                "grant_type": "password",
                "username": self.credentials.username,
                "password": self.credentials.password,
            },
            "password grant",
        )

    def _grant(self, body: dict[str, str], what: str) -> PasswordGrantTokens:
        started = self.clock()
        answer = self.client.call(
            "POST",
            self.pim_url,
            PASSWORD_GRANT_PATH,
            json=body,
            auth=HTTPBasicAuth(self.credentials.client_id, self.credentials.secret),
            what=f"connection {what}",
        )
        access = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(access, str) or not access:
            raise PimError(
                f"The PIM's answer to the connection {what} has no access_token.",
                pim_url=self.pim_url,
            )
        refresh = answer.get("refresh_token")
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        tokens = PasswordGrantTokens(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=started + lifetime,
        )
        self.store.grants.save(self.key, tokens)
        return tokens
