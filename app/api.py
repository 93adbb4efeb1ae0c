"""The PIM's REST API for your code: JSON in, JSON out, pagination followed, tokens handled.

    api = PimApi(pim_url, AppToken(store, pim_url), client)   # or ConnectionToken, StaticToken
    for product in api.items("/api/rest/v1/products"):
        ...

A 401 is retried once when the token source can renew its token (a connection's refresh); an App
token that is refused is marked revoked and TokenRevoked is raised for the page to offer a
reconnect.

A list is read a page at a time, as it is iterated, and never leaves the PIM's origin. In a web
request, bound it (`max_items`, `max_pages`, `max_seconds`): a hostile or broken PIM can serve a
list that never ends. The Listing then says why it stopped (`cut`) and where it would go on
(`next_path`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from .akeneo import SCOPES_UPDATE_PATH, AkeneoClient
from .errors import PimError, TokenRevoked
from .tokens import TokenSource


class PimApi:
    """Authenticated calls to one PIM's REST API."""

    def __init__(self, pim_url: str, tokens: TokenSource, client: AkeneoClient) -> None:
        self.pim_url, self.tokens, self.client = pim_url, tokens, client

    def get(self, path: str, params: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        """GET `path` (e.g. `/api/rest/v1/channels`) and return its JSON."""
        return self.request("GET", path, params=params, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any API request; `kwargs` go to requests (`params`, `json`) or call() (`deadline`)."""
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

    def items(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        limit: int = 100,
        max_items: int | None = None,
        max_pages: int | None = None,
        max_seconds: float | None = None,
    ) -> Listing:
        """The items of a paginated list, following `_links.next` on this PIM only."""
        query = urlencode({**(params or {}), "limit": str(limit)})
        return Listing(self, f"{path}?{query}", max_items, max_pages, max_seconds)


class Listing:
    """A paginated list read as it is iterated; once done, `cut` says if a bound stopped it."""

    def __init__(
        self,
        api: PimApi,
        first_path: str,
        max_items: int | None,
        max_pages: int | None,
        max_seconds: float | None,
    ) -> None:
        self.api = api
        #: the page the next read starts from; None once the PIM said there is no next page
        self.next_path: str | None = first_path
        #: why reading stopped before the end ("items", "pages" or "time"), else None
        self.cut: str | None = None
        self.max_items, self.max_pages, self.max_seconds = max_items, max_pages, max_seconds

    def __iter__(self) -> Iterator[dict[str, Any]]:
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        seen: set[str] = set()
        count = pages = 0
        while self.next_path:
            if self.max_items is not None and count >= self.max_items:
                self.cut = "items"  # and no page read for an item nobody will take
                return
            if self.max_pages is not None and pages >= self.max_pages:
                self.cut = "pages"
                return
            if deadline is not None and time.monotonic() >= deadline:
                self.cut = "time"
                return
            if self.next_path in seen:
                raise PimError(
                    "The PIM's list never ends: a page links back to an earlier one.",
                    pim_url=self.api.pim_url,
                )
            seen.add(self.next_path)
            page = self.api.get(self.next_path, deadline=deadline)
            pages += 1
            items, self.next_path = self._read_page(page)
            for item in items:
                if self.max_items is not None and count >= self.max_items:
                    self.cut = "items"
                    return
                count += 1
                yield item

    def _read_page(self, page: Any) -> tuple[list[dict[str, Any]], str | None]:
        """A page's items and the path of the next page, or PimError if it is not a list page."""
        embedded = page.get("_embedded") if isinstance(page, dict) else None
        items = embedded.get("items") if isinstance(embedded, dict) else None
        links = page.get("_links") if isinstance(page, dict) else None
        next_link = links.get("next") if isinstance(links, dict) else None
        href = next_link.get("href") if isinstance(next_link, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise PimError(
                "The PIM's answer is not a list page (no list of items).",
                pim_url=self.api.pim_url,
            )
        if href is not None and not isinstance(href, str):
            raise PimError("The PIM's next page link is malformed.", pim_url=self.api.pim_url)
        return items, self._same_origin_path(href) if href else None

    def _same_origin_path(self, href: str) -> str:
        # a relative link is the PIM's own; an absolute one must name the PIM's origin: the
        # token is never sent to a host the PIM names
        target = urlsplit(urljoin(self.api.pim_url + "/", href))
        if f"{target.scheme}://{target.netloc}" != self.api.pim_url:
            raise PimError("The PIM's next page points to another host.", pim_url=self.api.pim_url)
        return f"{target.path}?{target.query}" if target.query else target.path
