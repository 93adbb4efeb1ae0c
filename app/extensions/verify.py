"""What the PIM sends the App's extensions, checked (pure functions).

- An action's POST: `signature` is the hex HMAC-SHA512 of the raw body under the extension's
  secret (Akeneo documents SHA-512; its demo app reads this header, with an optional `sha512=`
  prefix: exactly that is accepted), and its `timestamp` at most 5 minutes from now.
- An iframe's token: a JWT the PIM signs with HS256 under the extension's secret (`jti`, `iat`,
  `exp`, `userId`, `userUuid`), verified by PyJWT: HS256 only, expiry and issue time required.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Any

import jwt

MAX_SKEW = 300  # seconds an action's timestamp may be off: a replayed body is refused after
MAX_PRODUCTS = 500  # what a grid action carries at most (Akeneo's limit)
#: the PIM's iframe tokens live an hour (`exp` = `iat` + 3600): one meant to live longer is no
#: token of the PIM's, and its id would be kept that long
MAX_TOKEN_SECONDS = 2 * 3600


class Refused(Exception):
    """What the PIM sent is not signed right, or is too old: said in a 401."""


def check_action(body: bytes, signature: str | None, secret: str) -> None:
    """Refused unless `signature` signs `body` under `secret` and its timestamp is recent."""
    given = (signature or "").strip().lower().removeprefix("sha512=")
    expected = hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Refused("The action is not signed with this extension's secret.")


def check_timestamp(payload: dict[str, Any], now: float | None = None) -> None:
    moment = time.time() if now is None else now
    stamp = payload.get("timestamp")
    if (
        not isinstance(stamp, int | float)
        or isinstance(stamp, bool)
        or not math.isfinite(stamp)  # NaN is never more than 5 minutes off: refuse it as such
        or abs(moment - stamp) > MAX_SKEW
    ):
        raise Refused("The action's timestamp is missing or more than 5 minutes off (a replay?).")


def products_of(payload: dict[str, Any]) -> list[str]:
    """The product uuids an action names (the grid's selection, or the product page's one)."""
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    uuids = data.get("productUuids")
    if uuids is None and isinstance(data.get("productUuid"), str):
        uuids = [data["productUuid"]]
    if not isinstance(uuids, list) or not all(
        isinstance(u, str) and 0 < len(u) <= 36 for u in uuids
    ):
        raise ValueError("The action names no product uuids.")
    if len(uuids) > MAX_PRODUCTS:
        raise ValueError(f"An action takes {MAX_PRODUCTS} products at most.")
    return list(dict.fromkeys(uuids))


def check_token(token: str, secret: str) -> dict[str, Any]:
    """The claims of an iframe token signed with `secret`; Refused otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],  # never `none`, never another extension's algorithm
            options={"require": ["exp", "iat", "jti"]},
            leeway=30,  # the PIM's clock and the App's may differ a little
        )
    except jwt.PyJWTError as error:
        raise Refused(f"The token is not valid ({type(error).__name__}).") from None
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise Refused("The token has no id.")
    # PyJWT took `exp` as a number in the future: it must not be far in it (1e20 is not a date)
    if claims["exp"] - time.time() > MAX_TOKEN_SECONDS:
        raise Refused("The token lives longer than the PIM's tokens do.")
    return claims
