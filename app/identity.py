"""Who connected the App: the PIM's OpenID id_token, verified with PyJWT, as a small User value.

The PIM signs id_tokens with RS256 and publishes one key (a PEM certificate or public key) at
/connect/apps/v1/openid/public-key, rotated from time to time. The key is cached briefly per PIM
and fetched again once when a signature does not verify with the cached one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .errors import PimError

LEEWAY_SECONDS = 120
KEY_TTL_SECONDS = 300
MAX_ID_TOKEN = 16_384  # characters; a PIM id_token is about 1 KB
MAX_SUB = 255  # the store's column; a PIM's sub is a UUID
MAX_NAME = 100
MAX_EMAIL = 254  # RFC 5321's longest address
# header parameters that point a verifier at another key: we never use them, and refuse them
_KEY_POINTERS = frozenset({"jku", "jwk", "x5u", "x5c", "kid", "crit"})


@dataclass(frozen=True)
class User:
    """The person who connected the App. `sub` identifies them; the rest is for display only."""

    sub: str
    name: str | None = None
    email: str | None = None

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> User:
        """Build a User from verified id_token claims."""
        name = " ".join(str(claims[k]).strip() for k in ("firstname", "lastname") if claims.get(k))
        email = str(claims.get("email") or "")
        return cls(
            sub=str(claims["sub"]),
            name=name[:MAX_NAME] or None,  # display only: cut, never refused
            email=email if 0 < len(email) <= MAX_EMAIL else None,  # a cut address is wrong
        )


class IdTokenRefused(PimError):
    """The id_token did not verify: the connection is refused and nothing is stored."""

    title = "The PIM's identity token could not be verified"


class IdTokenVerifier:
    """Verifies id_tokens from any PIM, caching each PIM's public key for a few minutes."""

    def __init__(
        self,
        fetch_key: Callable[[str], str],
        *,
        ttl: float = KEY_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch_key = fetch_key
        self._ttl = ttl
        self._clock = clock
        # a cache, not state: losing it (restart, another worker) only costs one key fetch
        self._keys: dict[str, tuple[float, RSAPublicKey]] = {}
        self._lock = threading.Lock()

    def verify(self, id_token: str, *, pim_url: str, client_id: str) -> User:
        """Check signature, header, `iss`, `aud`, `exp`, `iat` and `sub`; return the User."""
        _check_header(id_token, pim_url)
        key, fresh = self._key(pim_url, refresh=False)
        try:
            claims = _decode(id_token, key, pim_url=pim_url, client_id=client_id)
        except jwt.InvalidSignatureError:
            if fresh:
                raise IdTokenRefused(
                    "The identity token's signature is not valid.", pim_url=pim_url
                ) from None
            # the PIM may have rotated its key since we cached it: fetch it once more
            key, _ = self._key(pim_url, refresh=True)
            try:
                claims = _decode(id_token, key, pim_url=pim_url, client_id=client_id)
            except jwt.InvalidSignatureError:
                raise IdTokenRefused(
                    "The identity token's signature is not valid.", pim_url=pim_url
                ) from None
        return User.from_claims(claims)

    def _key(self, pim_url: str, *, refresh: bool) -> tuple[RSAPublicKey, bool]:
        now = self._clock()
        with self._lock:
            cached = self._keys.get(pim_url)
        if cached and not refresh and now - cached[0] < self._ttl:
            return cached[1], False
        key = load_rsa_key(self._fetch_key(pim_url), pim_url)
        with self._lock:
            self._keys[pim_url] = (now, key)
        return key, True


def load_rsa_key(pem: str, pim_url: str) -> RSAPublicKey:
    """An RSA public key from a PEM certificate (what the PIM sends) or a PEM public key."""
    try:
        data = pem.encode()
        if b"BEGIN CERTIFICATE" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except ValueError:
        raise PimError("The PIM's OpenID public key is not a valid PEM.", pim_url=pim_url) from None
    if not isinstance(key, RSAPublicKey):
        raise PimError("The PIM's OpenID public key is not an RSA key.", pim_url=pim_url)
    return key


def _check_header(id_token: str, pim_url: str) -> None:
    if len(id_token) > MAX_ID_TOKEN:
        raise IdTokenRefused("The identity token is too large.", pim_url=pim_url)
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.DecodeError:
        raise IdTokenRefused("The identity token is malformed.", pim_url=pim_url) from None
    if header.get("alg") != "RS256":
        raise IdTokenRefused("The identity token is not signed with RS256.", pim_url=pim_url)
    if _KEY_POINTERS & header.keys():
        raise IdTokenRefused(
            "The identity token's header names its own key, which the App never trusts.",
            pim_url=pim_url,
        )


def _decode(id_token: str, key: RSAPublicKey, *, pim_url: str, client_id: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=pim_url,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "iat", "exp"], "strict_aud": True},
        )
    except jwt.InvalidSignatureError:
        raise
    except jwt.ExpiredSignatureError:
        raise IdTokenRefused("The identity token has expired.", pim_url=pim_url) from None
    except jwt.ImmatureSignatureError:
        raise IdTokenRefused(
            "The identity token is issued in the future.", pim_url=pim_url
        ) from None
    except jwt.InvalidIssuerError:
        raise IdTokenRefused(
            "The identity token was issued by another PIM.", pim_url=pim_url
        ) from None
    except jwt.InvalidAudienceError:
        raise IdTokenRefused(
            "The identity token is meant for another App.", pim_url=pim_url
        ) from None
    except jwt.MissingRequiredClaimError as error:
        raise IdTokenRefused(
            f"The identity token lacks the {error.claim!r} claim.", pim_url=pim_url
        ) from None
    except jwt.InvalidTokenError:
        raise IdTokenRefused("The identity token is malformed.", pim_url=pim_url) from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenRefused("The identity token has no user id (sub).", pim_url=pim_url)
    if len(claims["sub"]) > MAX_SUB:
        raise IdTokenRefused("The identity token's user id (sub) is too long.", pim_url=pim_url)
    return claims
