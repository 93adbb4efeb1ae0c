"""What the Event Platform POSTs: its signature, and the CloudEvent inside (pure functions).

Each delivery is signed over its raw body: `X-AKENEO-SIGNATURE-PRIMARY` and `-SECONDARY` are the
hex HMAC-SHA256 under the subscription's primary and secondary secrets, and
`X-AKENEO-SIGNATURE-ALGORITHM` says `HmacSHA256`. The body is a CloudEvent 1.0 in structured
mode: `id`, `type`, `subject` (the subscription id), `time`, `data`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import Headers

ALGORITHM = "HmacSHA256"
SIGNATURE_HEADERS = ("X-AKENEO-SIGNATURE-PRIMARY", "X-AKENEO-SIGNATURE-SECONDARY")
ALGORITHM_HEADER = "X-AKENEO-SIGNATURE-ALGORITHM"

PRODUCT_EVENTS = {
    "com.akeneo.pim.v1.product.created": False,  # the value: whether the product is deleted
    "com.akeneo.pim.v1.product.updated": False,
    "com.akeneo.pim.v1.product.deleted": True,
}
APP_DELETED = "com.akeneo.pim.v1.app.deleted"


def signature(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `body` under `secret`, as the platform computes it."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(body: bytes, headers: Mapping[str, str] | Headers, secrets: Iterable[str]) -> bool:
    """True when a signature header matches `body` under one of `secrets` (constant time)."""
    if headers.get(ALGORITHM_HEADER) != ALGORITHM:
        return False
    given = [headers.get(name, "").strip().lower() for name in SIGNATURE_HEADERS]
    given = [g for g in given if g]
    matched = False
    for secret in secrets:
        expected = signature(secret, body)
        for candidate in given:  # every comparison is made: no early exit to time
            matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched


class Malformed(ValueError):
    """A body that is no CloudEvent the App understands (said in the 400)."""


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    subscription_id: str
    data: dict[str, Any]

    def product_change(self) -> tuple[str, bool] | None:
        """(uuid, deleted) for a product event, else None; Malformed without a product uuid."""
        if self.type not in PRODUCT_EVENTS:
            return None
        product = self.data.get("product")
        uuid = product.get("uuid") if isinstance(product, dict) else None
        if not isinstance(uuid, str) or not 0 < len(uuid) <= 36:
            raise Malformed("A product event needs data.product.uuid.")
        return uuid, PRODUCT_EVENTS[self.type]

    def author(self) -> str | None:
        """Who made the change (a user's or an App's id), when the event says."""
        author = self.data.get("author")
        identifier = author.get("identifier") if isinstance(author, dict) else None
        return identifier if isinstance(identifier, str) else None

    def deleted_app(self) -> str | None:
        """The client id of the App an `app.deleted` event names."""
        app = self.data.get("app")
        client_id = app.get("client_id") if isinstance(app, dict) else None
        return client_id if isinstance(client_id, str) else None


def parse_event(body: Any) -> Event:
    """The CloudEvent in a parsed JSON body; Malformed when a field it needs is missing."""
    if not isinstance(body, dict):
        raise Malformed("The body is not a JSON object.")
    fields = {name: body.get(name) for name in ("id", "type", "subject")}
    missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
    if missing:
        raise Malformed(f"The event has no {', '.join(missing)}.")
    data = body.get("data")
    return Event(
        id=str(fields["id"])[:255],
        type=str(fields["type"]),
        subscription_id=str(fields["subject"]),
        data=data if isinstance(data, dict) else {},
    )
