"""A PIM's answer, and what it means: a 2xx to read, or the typed error that says what failed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import PimError, PimHttpError, TokenRevoked, pim_message


@dataclass(frozen=True)
class PimResponse:
    """A PIM's answer: its status, headers and body (empty when it went to a sink)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    ms: float = 0.0

    def json(self, what: str = "request") -> Any:
        """The body as JSON; PimError when it is not JSON."""
        parsed = parse_json(self.body)
        if parsed is NOT_JSON:
            target = urlsplit(self.url)
            raise PimError(
                f"The PIM's answer to the {what} is not JSON.",
                pim_url=f"{target.scheme}://{target.netloc}",
            )
        return parsed

    @property
    def location(self) -> str | None:
        """The Location header (what a create or an update names)."""
        return self.headers.get("Location")

    @property
    def retry_after(self) -> float | None:
        """Retry-After in seconds, when the PIM gave a number."""
        try:
            seconds = float(self.headers.get("Retry-After", ""))
        except ValueError:
            return None
        return seconds if seconds >= 0 else None


def checked(response: PimResponse, *, what: str, pim_url: str, token: str | None) -> PimResponse:
    """The response if it is a 2xx; else the typed error that says what the PIM refused."""
    if 200 <= response.status < 300:
        return response  # parsed by its reader, once: a page of products is 1 to 2 MB
    body = parse_json(response.body)
    if response.status == 401 and token:
        raise TokenRevoked(
            pim_message(body) or "The PIM no longer accepts the App's token.", pim_url=pim_url
        )
    if 300 <= response.status < 400:
        raise PimError(
            f"The PIM refused the {what} (HTTP {response.status}): it answered with a "
            "redirect, which the App does not follow.",
            pim_url=pim_url,
        )
    raise PimHttpError.from_answer(response.status, body, response.retry_after, what, pim_url)


NOT_JSON = object()


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or NOT_JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return NOT_JSON
