"""The PIM's REST API for your code: JSON in, JSON out, pagination followed, tokens handled.

    api = PimApi(pim_url, AppToken(store, pim_url), client)   # or ConnectionToken, StaticToken
    for product in api.items("/api/rest/v1/products"):
        ...

A 401 is retried once when the token source can renew its token (a connection's refresh); an App
token that is refused is marked revoked and TokenRevoked is raised for the page to offer a
reconnect.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from .akeneo import SCOPES_UPDATE_PATH, AkeneoClient
from .errors import PimError, TokenRevoked
from .tokens import TokenSource


class PimApi:
    """Authenticated calls to one PIM's REST API."""

    def __init__(self, pim_url: str, tokens: TokenSource, client: AkeneoClient) -> None:
        self.pim_url, self.tokens, self.client = pim_url, tokens, client

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET `path` (e.g. `/api/rest/v1/channels`) and return its JSON."""
        return self.request("GET", path, params=params)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any API request; `kwargs` go to requests (`params`, `json`)."""
        token = self.tokens.token()
        try:
            return self.client.call(
                method, self.pim_url, path, token=token, what=f"API call {path}", **kwargs
            )
        except TokenRevoked:
            if not self.tokens.refused(token):
                raise
        # the source renewed its token: try once more, and let a second 401 through
        return self.client.call(
            method,
            self.pim_url,
            path,
            token=self.tokens.token(),
            what=f"API call {path}",
            **kwargs,
        )

    def notify_scopes(self, scopes: tuple[str, ...]) -> None:
        """Tell the PIM the App now needs `scopes`; it notifies the users who manage the App.

        This grants nothing: the users then open the App again, which asks for all `scopes`.
        """
        self.request("POST", SCOPES_UPDATE_PATH, params={"scopes": " ".join(scopes)})

    def items(self, path: str, limit: int = 100) -> Iterator[Any]:
        """Every item of a paginated list, following `_links.next` on the same PIM."""
        page: Any = self.get(path, {"limit": str(limit)})
        while True:
            yield from page.get("_embedded", {}).get("items", [])
            next_href = page.get("_links", {}).get("next", {}).get("href")
            if not next_href:
                return
            target = urlsplit(next_href)
            if f"{target.scheme}://{target.netloc}" != self.pim_url:
                # never send the token to a host the PIM names
                raise PimError("The PIM's next page points to another host.", pim_url=self.pim_url)
            page = self.get(f"{target.path}?{target.query}")
