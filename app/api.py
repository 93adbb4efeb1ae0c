"""The PIM's REST API for your code: JSON in, JSON out, pagination followed, tokens handled.

    api = PimApi(pim_url, AppToken(store, pim_url), client)   # or ConnectionToken, StaticToken
    for product in api.items("/api/rest/v1/products-uuid", search_after=True):
        ...
    created = api.write("POST", "/api/rest/v1/products-uuid", {...})    # created.code: its uuid
    for result in api.upsert_list("/api/rest/v1/products-uuid", products):  # 100 a request
        if not result.ok: print(result.line, result.status, result.message, result.errors)
    api.download(f"/api/rest/v1/media-files/{code}/download", open("image.jpg", "wb"))

Errors are typed: PimHttpError carries the PIM's `pim_status`, `pim_message`, `errors` (422)
and `retry_after` (429), so code can tell a 404 from a 422 without reading text.

A 401 is retried once when the token source can renew its token (a connection's refresh); an App
token that is refused is marked revoked and TokenRevoked is raised for the page to offer a
reconnect.

A list is read a page at a time, as it is iterated, and never leaves the PIM's origin. In a web
request, bound it (`max_items`, `max_pages`, `max_seconds`): a hostile or broken PIM can serve a
list that never ends. The Listing then says why it stopped (`cut`) and where it would go on
(`next_path`).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit

from .akeneo import SCOPES_UPDATE_PATH, AkeneoClient
from .errors import PimError, TokenRevoked
from .pim_response import PimResponse
from .tokens import TokenSource

T = TypeVar("T")

COLLECTION_TYPE = "application/vnd.akeneo.collection+json"
MAX_BATCH = 100  # items per list upsert: Akeneo answers 413 beyond
MAX_ITEM_MESSAGE = 500


@dataclass(frozen=True)
class Written:
    """What a write did: the PIM's status (201 created, 204 updated or deleted) and Location."""

    status: int
    location: str | None

    @property
    def code(self) -> str | None:
        """The code or uuid the Location names (its last path segment), if any."""
        if not self.location:
            return None
        return unquote(urlsplit(self.location).path.rstrip("/").rsplit("/", 1)[-1]) or None


@dataclass(frozen=True)
class ItemResult:
    """The PIM's answer for one item of a list upsert (one NDJSON line)."""

    line: int
    identifier: str | None  # the item's uuid, identifier or code, as the PIM names it
    status: int  # 201 created, 204 updated, 4xx refused
    message: str = ""
    errors: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        """True when the PIM created or updated the item."""
        return self.status in (200, 201, 204)


class PimApi:
    """Authenticated calls to one PIM's REST API."""

    def __init__(self, pim_url: str, tokens: TokenSource, client: AkeneoClient) -> None:
        self.pim_url, self.tokens, self.client = pim_url, tokens, client

    def get(self, path: str, params: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        """GET `path` (e.g. `/api/rest/v1/channels`) and return its JSON."""
        return self.send("GET", path, params=params, **kwargs).json(f"API call {path}")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any API request that answers JSON; `kwargs` as for send()."""
        return self.send(method, path, **kwargs).json(f"API call {path}")

    def send(self, method: str, path: str, **kwargs: Any) -> PimResponse:
        """Any API request, answered as a PimResponse (status, headers, body).

        `kwargs` go to requests (`params`, `json`, `data`) or to AkeneoClient.send (`headers`,
        `deadline`, `sink`). Non-2xx answers raise (PimHttpError and its kin).
        """
        token = self.tokens.token()
        what = f"API call {path.split('?', 1)[0]}"
        try:
            return self.client.send(method, self.pim_url, path, token=token, what=what, **kwargs)
        except TokenRevoked:
            if not self.tokens.refused(token):
                raise
        # the source renewed its token: try once more, and let a second 401 through
        return self.client.send(
            method, self.pim_url, path, token=self.tokens.token(), what=what, **kwargs
        )

    def write(self, method: str, path: str, body: Any = None) -> Written:
        """POST, PATCH or DELETE one resource; 201 and 204 (no body) are successes.

        A create answers its Location (`Written.code` is the new code or uuid). A 422 raises
        PimHttpError with the PIM's `errors`.
        """
        sent = {} if body is None else {"json": body}
        response = self.send(method, path, **sent)
        return Written(response.status, response.location)

    def upsert_list(
        self, path: str, items: Iterable[Mapping[str, Any]], batch: int = MAX_BATCH
    ) -> Iterator[ItemResult]:
        """Create or update many items (e.g. `/api/rest/v1/products-uuid`), `batch` a request.

        Items go as `application/vnd.akeneo.collection+json` (one JSON object a line), the way
        Akeneo asks to stay within its rate limits; each answer line is one ItemResult, in order.
        A refused item never stops the others. Retried on 429 and 5xx like any PATCH: an upsert
        sent twice has the same effect.
        """
        if not 0 < batch <= MAX_BATCH:
            raise ValueError(f"batch must be 1 to {MAX_BATCH}: Akeneo refuses more per request")
        offset = 0
        for chunk in _batches(items, batch):
            body = "\n".join(json.dumps(item, ensure_ascii=False) for item in chunk)
            response = self.send(
                "PATCH",
                path,
                data=body.encode(),
                headers={"Content-Type": COLLECTION_TYPE},
            )
            results = _item_results(response.body, offset, self.pim_url)
            if len(results) != len(chunk):
                raise PimError(
                    f"The PIM answered {len(results)} lines for {len(chunk)} items.",
                    pim_url=self.pim_url,
                )
            yield from results
            offset += len(chunk)

    def download(self, path: str, destination: BinaryIO) -> int:
        """Stream a file (a media file's `/download`) into `destination`; return its size.

        The file never sits whole in memory; it is capped like any API answer.
        """
        before = destination.tell() if destination.seekable() else 0
        self.send("GET", path, sink=destination, headers={"Accept": "*/*"})
        return (destination.tell() if destination.seekable() else 0) - before

    def notify_scopes(self, scopes: tuple[str, ...]) -> None:
        """Tell the PIM the App now needs `scopes`; it notifies the users who manage the App.

        This grants nothing: the users then open the App again, which asks for all `scopes`.
        """
        self.send("POST", SCOPES_UPDATE_PATH, params={"scopes": " ".join(scopes)})

    def items(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        limit: int = 100,
        search_after: bool = False,
        max_items: int | None = None,
        max_pages: int | None = None,
        max_seconds: float | None = None,
        of: type[dict[str, Any]] | type[str] = dict,
    ) -> Listing:
        """The items of a paginated list, following `_links.next` on this PIM only.

        `search_after=True` asks for Akeneo's cursor pagination: the way to read big product
        lists (offset pages get slower the further they go, and stop at 10,000 items).
        `of=str` reads a list of strings (a catalog's `product-uuids`) instead of objects.
        """
        # a query in `path` (`/api/rest/v1/products?limit=100`) counts as params, given ones win
        path, _, given = path.partition("?")
        query = {**dict(parse_qsl(given, keep_blank_values=True)), **dict(params or {})}
        if search_after:
            query["pagination_type"] = "search_after"
        query.setdefault("limit", str(limit))
        first = f"{path}?{urlencode(query)}"
        return Listing(self, first, max_items, max_pages, max_seconds, of=of)

    def resume(
        self, next_path: str, of: type[dict[str, Any]] | type[str] = dict, **bounds: Any
    ) -> Listing:
        """Go on reading a list from a Listing's `next_path` (after an error, or a cut)."""
        return Listing(
            self,
            next_path,
            bounds.get("max_items"),
            bounds.get("max_pages"),
            bounds.get("max_seconds"),
            of=of,
        )


def _batches(items: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    chunk: list[Mapping[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _item_results(body: bytes, offset: int, pim_url: str) -> list[ItemResult]:
    """The NDJSON answer of a list upsert, one ItemResult a line (lines numbered from offset)."""
    results: list[ItemResult] = []
    for raw in body.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        if not isinstance(line, dict) or not isinstance(line.get("status_code"), int):
            raise PimError("The PIM's answer to a list upsert is not NDJSON.", pim_url=pim_url)
        key = next((k for k in ("uuid", "identifier", "code") if k in line), None)
        errors = line.get("errors")
        number = line.get("line", len(results) + 1)
        if not isinstance(number, int) or isinstance(number, bool):
            raise PimError(
                "The PIM's answer to a list upsert numbers its lines wrong.", pim_url=pim_url
            )
        results.append(
            ItemResult(
                line=offset + number,
                identifier=str(line[key]) if key else None,
                status=line["status_code"],
                message=str(line.get("message", ""))[:MAX_ITEM_MESSAGE],
                errors=tuple(e for e in errors if isinstance(e, dict))
                if isinstance(errors, list)
                else (),
            )
        )
    return results


class ListUnavailable(PimError):
    """The PIM answered 200 with its reason instead of a list (a disabled catalog, §2.1)."""

    def __init__(self, reason: str, *, pim_url: str | None) -> None:
        super().__init__(f"The PIM gives no list: {reason}", pim_url=pim_url)
        self.reason = reason


@dataclass(frozen=True)
class Page:
    """One page of a list: its items, and the path of the next page (None on the last)."""

    items: list[Any]
    next_path: str | None
    #: when the page was asked for: the PIM answered with its data as of then, or later
    asked_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Listing:
    """A paginated list read as it is iterated; once done, `cut` says if a bound stopped it."""

    def __init__(
        self,
        api: PimApi,
        first_path: str,
        max_items: int | None,
        max_pages: int | None,
        max_seconds: float | None,
        *,
        of: type[dict[str, Any]] | type[str] = dict,
    ) -> None:
        self.api = api
        #: the page the next read starts from; None once the PIM said there is no next page. It
        #: moves a page at a time: after a cut by `max_items` in the middle of a page, resuming
        #: starts at the following page (cut on a page boundary to lose nothing)
        self.next_path: str | None = first_path
        #: why reading stopped before the end ("items", "pages" or "time"), else None
        self.cut: str | None = None
        self.max_items, self.max_pages, self.max_seconds = max_items, max_pages, max_seconds
        self.item_type = of

    def __iter__(self) -> Iterator[Any]:
        count = 0
        for page in self.pages():
            for item in page.items:
                if self.max_items is not None and count >= self.max_items:
                    self.cut = "items"
                    return
                count += 1
                yield item
            if self.max_items is not None and count >= self.max_items and self.next_path:
                self.cut = "items"  # and no page read for an item nobody will take
                return

    def pages(self) -> Iterator[Page]:
        """The list a page at a time: for a caller that saves its place after each page."""
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        seen: set[str] = set()
        pages = 0
        while self.next_path:
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
            asked_at = datetime.now(UTC)
            body = self.api.get(self.next_path, deadline=deadline)
            pages += 1
            page = replace(self._read_page(body), asked_at=asked_at)
            self.next_path = page.next_path
            yield page

    def _read_page(self, page: Any) -> Page:
        """A page's items and the path of the next page, or PimError if it is not a list page."""
        embedded = page.get("_embedded") if isinstance(page, dict) else None
        if isinstance(page, dict) and embedded is None and ("error" in page or "message" in page):
            reason = page.get("error") or page.get("message")
            raise ListUnavailable(str(reason)[:300], pim_url=self.api.pim_url)
        items = embedded.get("items") if isinstance(embedded, dict) else None
        links = page.get("_links") if isinstance(page, dict) else None
        next_link = links.get("next") if isinstance(links, dict) else None
        href = next_link.get("href") if isinstance(next_link, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, self.item_type) for i in items):
            raise PimError(
                "The PIM's answer is not a list page (no list of items).",
                pim_url=self.api.pim_url,
            )
        if href is not None and not isinstance(href, str):
            raise PimError("The PIM's next page link is malformed.", pim_url=self.api.pim_url)
        return Page(items, self._same_origin_path(href) if href else None)

    def _same_origin_path(self, href: str) -> str:
        # a relative link is the PIM's own; an absolute one must name the PIM's origin: the
        # token is never sent to a host the PIM names
        target = urlsplit(urljoin(self.api.pim_url + "/", href))
        if f"{target.scheme}://{target.netloc}" != self.api.pim_url:
            raise PimError("The PIM's next page points to another host.", pim_url=self.api.pim_url)
        return f"{target.path}?{target.query}" if target.query else target.path


def read_ahead(pages: Iterator[T]) -> Iterator[T]:
    """The pages of `pages`, the next one read (in a thread) while the caller works on this one:
    a caller that saves each page waits on the PIM or on its database, not on both in turn.

    One request at a time still: the next page is asked for only once the last one is in. The
    thread runs in a copy of the caller's context (its Flask app context included). A caller that
    stops early waits for the page in flight, which is then thrown away.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as reader:

        def next_page() -> T | None:
            return next(pages, None)

        def ask() -> Future[T | None]:
            return reader.submit(contextvars.copy_context().run, next_page)

        coming = ask()
        while (page := coming.result()) is not None:
            coming = ask()
            yield page
