"""The App's catalog in one PIM: found or created after every connection, read for the pages.

A disabled catalog, or one without a schema, answers 200 with an `error` key instead of items:
that is a state to explain, never "no products".
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..api import ListUnavailable, PimApi
from ..errors import AppError, PimError, PimHttpError, PimTimeout, TokenRevoked
from .store import CLAIM_TTL, CatalogStore

log = logging.getLogger(__name__)

CATALOGS_PATH = "/api/rest/v1/catalogs"
SCHEMA_FILE = Path(__file__).with_name("product_schema.json")
CATALOG_SCOPES = ("read_catalogs", "write_catalogs", "delete_catalogs", "read_products")
CLAIM_WAIT = 10.0  # seconds a request waits for another one creating the catalog


@dataclass(frozen=True)
class CatalogInfo:
    """A catalog as the PIM shows it (§1.2)."""

    id: str
    name: str
    enabled: bool

    @classmethod
    def from_json(cls, body: Any, pim_url: str) -> CatalogInfo:
        """From the PIM's JSON; PimError when it is not a catalog."""
        catalog_id = body.get("id") if isinstance(body, dict) else None
        # a catalog id is a UUID: anything else (or longer than its column) is no catalog
        if not isinstance(catalog_id, str) or not 0 < len(catalog_id) <= 64:
            raise PimError("The PIM's answer is not a catalog.", pim_url=pim_url)
        return cls(body["id"], str(body.get("name", "")), body.get("enabled") is True)


@dataclass(frozen=True)
class MappedPage:
    """One page of mapped products, the cursor to the next one, or why there is none."""

    products: list[dict[str, Any]]
    next_cursor: str | None = None
    unusable: str | None = None  # the PIM's own words: disabled, or no mapping schema


@dataclass(frozen=True)
class CatalogView:
    """What a page shows of the App's catalog in one PIM."""

    catalog: CatalogInfo | None
    configure_url: str | None = None
    products: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None  # the last uuid shown, when there is a next page
    notice: str | None = None  # why no product is shown, in plain words
    copied_at: datetime | None = None  # read from a local copy made then; None: from the PIM
    stale: str | None = None  # why the copy may be out of date (its last sync stopped)
    previous_cursor: str | None = None  # the first uuid shown, when there is a page before
    total: int | None = None  # products in the copy (None: read from the PIM, not counted)
    matched: int | None = None  # of those, the ones the search found


@dataclass(frozen=True)
class PageQuery:
    """Which page of products: `limit` after (or before) a uuid, matching `search`."""

    limit: int
    after: str | None = None
    before: str | None = None
    search: str | None = None  # in the title and the SKU; on a local copy only


@dataclass(frozen=True)
class CopiedPage:
    """A page of a local copy of the catalog (the sync feature keeps one)."""

    products: list[dict[str, Any]]
    next_cursor: str | None  # the last uuid of the page, when there is a next one
    previous_cursor: str | None  # the first uuid of the page, when there is one before
    copied_at: datetime
    total: int
    matched: int | None = None  # with a search: how many products it found
    stale: str | None = None  # why the copy may be out of date, in plain words


@dataclass(frozen=True)
class ProductView:
    """One product as its page shows it: its mapped values, and where and when they were read."""

    product: dict[str, Any] | None
    read_at: datetime | None = None  # when the copy read it; None: from the PIM just now
    notice: str | None = None  # why it is not shown


class ProductCopy(Protocol):
    """A local copy of the App's catalogs (the sync feature keeps one): what pages read."""

    def page(self, pim_url: str, catalog_id: str, query: PageQuery) -> CopiedPage | None:
        """A page of the copy of `catalog_id`; None when there is no usable copy of it."""
        ...

    def product(
        self, pim_url: str, catalog_id: str, uuid: str
    ) -> tuple[dict[str, Any], datetime] | None:
        """One product of the copy and when it was read; None when the copy has none."""
        ...


def catalog_path(catalog_id: str, *parts: str) -> str:
    """The API path of a catalog, or of one of its lists (`mapped-products`, `product-uuids`)."""
    return "/".join((CATALOGS_PATH, quote(catalog_id, safe=""), *parts))


def hash_of(schema: dict[str, Any]) -> str:
    """A schema's fingerprint: the same for the same schema, whatever its keys' order."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """The App's product mapping schema (kept in the repository, pushed to every PIM)."""
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


class AppCatalog:
    """The App's catalog in one PIM, through that PIM's API client."""

    def __init__(
        self,
        api: PimApi,
        store: CatalogStore,
        name: str,
        schema: dict[str, Any],
        copy: ProductCopy | None = None,
        on_schema_pushed: Callable[[str], None] | None = None,
        schema_hash: str | None = None,
    ) -> None:
        self.api, self.store, self.name, self.schema = api, store, name, schema
        self.copy = copy
        self.on_schema_pushed = on_schema_pushed  # told when a changed schema reached the PIM
        self.schema_hash = schema_hash or hash_of(schema)

    @property
    def pim_url(self) -> str:
        """The PIM this is about."""
        return self.api.pim_url

    def configure_url(self, catalog_id: str) -> str:
        """The PIM's configure page for the catalog (the PIM redirects it to its screen)."""
        return f"{self.pim_url}/connect/apps/v1/catalogs/{quote(catalog_id, safe='')}"

    def all(self, max_seconds: float | None = None) -> list[CatalogInfo]:
        """Every catalog of this App in the PIM, following the pages (for `max_seconds` at
        most, its waits on the PIM included)."""
        listing = self.api.items(CATALOGS_PATH, max_seconds=max_seconds)
        catalogs = []
        for item in listing:
            try:
                catalogs.append(CatalogInfo.from_json(item, self.pim_url))
            except PimError:
                log.warning("not a catalog in the list pim=%s", self.pim_url)
        if listing.cut:
            raise PimTimeout(
                "The PIM did not list the App's catalogs in time.", pim_url=self.pim_url
            )
        return catalogs

    def ensure(self) -> CatalogInfo:
        """Find the App's catalog by exact name or create it; push the schema; remember its id.

        Idempotent: run after every connection, it never makes a second catalog. After the App
        was disconnected in the PIM (which deletes its catalogs), it makes a new one.
        """
        found = self._named()
        if found is None:
            found = self._create_once()
        self._push_schema(found.id, self.store.schema_hash(self.pim_url))
        self.store.save(self.pim_url, found.id)
        return found

    def push_schema_if_changed(self, catalog_id: str | None = None) -> bool:
        """Push the App's schema to its catalog (`catalog_id`: the known one) when it changed
        since it was last pushed (a copier edited `product_schema.json` and restarted); True
        when it did."""
        catalog_id = catalog_id or self.store.catalog_id(self.pim_url)
        pushed = self.store.schema_hash(self.pim_url)
        if not catalog_id or pushed == self.schema_hash:
            return False
        self._push_schema(catalog_id, pushed)
        log.info("product schema pushed again pim=%s catalog=%s", self.pim_url, catalog_id)
        return True

    def _push_schema(self, catalog_id: str, pushed_before: str | None) -> None:
        # any 2xx is success: the PIM has answered 200, 201 and 204 here over the years (§1.8)
        path = catalog_path(catalog_id, "mapping-schemas", "product")
        self.api.send("PUT", path, json=self.schema)
        self.store.save_schema_hash(self.pim_url, self.schema_hash)
        if pushed_before not in (None, self.schema_hash) and self.on_schema_pushed:
            self.on_schema_pushed(self.pim_url)

    def _named(self, max_seconds: float | None = None) -> CatalogInfo | None:
        named = [c for c in self.all(max_seconds) if c.name == self.name]
        return min(named, key=lambda c: c.id) if named else None

    def _create_once(self) -> CatalogInfo:
        """Create the catalog; when several requests (workers, instances) get here at once, one
        creates it and the others wait for it: the claim is a row in the shared database."""
        if not self.store.claim(self.pim_url):
            deadline = time.monotonic() + CLAIM_WAIT
            while time.monotonic() < deadline:
                time.sleep(0.2)
                if found := self._named():
                    return found
            raise PimError(
                "Another request is creating the App's catalog in this PIM; reload in a moment.",
                pim_url=self.pim_url,
            )
        # the holder's calls, waits on a 429 included, end before its claim could expire
        deadline = time.monotonic() + CLAIM_TTL.total_seconds() - 5
        try:
            # asked again with the claim held: another request may have made it meanwhile
            if found := self._named(max_seconds=deadline - time.monotonic()):
                return found
            answer = self.api.request(
                "POST", CATALOGS_PATH, json={"name": self.name}, deadline=deadline
            )
            created = CatalogInfo.from_json(answer, self.pim_url)
        finally:
            self.store.release(self.pim_url)
        log.info("catalog created pim=%s catalog=%s", self.pim_url, created.id)
        return created

    def get(self, catalog_id: str) -> CatalogInfo | None:
        """The catalog, or None when the PIM no longer has it (deleted with a disconnect)."""
        try:
            return CatalogInfo.from_json(self.api.get(catalog_path(catalog_id)), self.pim_url)
        except PimHttpError as error:
            if error.pim_status == 404:
                return None
            raise

    def mapped_products(
        self, catalog_id: str, *, limit: int = 100, after: str | None = None
    ) -> MappedPage:
        """One page of the catalog's mapped products (search_after cursor), or why not."""
        path = catalog_path(catalog_id, "mapped-products")
        listing = self.api.items(path, {"search_after": after} if after else {}, limit=limit)
        try:
            page = next(listing.pages())
        except ListUnavailable as unusable:  # disabled, or no mapping schema: 200 with why (§2.1)
            return MappedPage([], unusable=unusable.reason)
        cursor = str(page.items[-1].get("uuid")) if page.next_path and page.items else None
        return MappedPage(page.items, next_cursor=cursor)

    def view(self, query: PageQuery, *, check_catalog: bool = False) -> CatalogView:
        """The catalog and a page of its products.

        The one place that decides where products come from: the local copy when one of this
        catalog exists (no PIM call for them), else the PIM. With `check_catalog`, the PIM is
        asked how the catalog stands (enabled, still there) even when the copy has the products.
        Finds or creates the catalog when none is known or the PIM no longer has it, so a
        failure at connection time is tried again on the next visit. Errors become a notice.
        """
        catalog_id = self.store.catalog_id(self.pim_url)
        try:
            self.push_schema_if_changed(catalog_id)
        except TokenRevoked:
            raise
        except AppError as error:  # pushed on a later visit; the page shows what it can
            log.warning("product schema not pushed pim=%s reason=%s", self.pim_url, error.message)
        if catalog_id and self.copy:
            copied = self.copy.page(self.pim_url, catalog_id, query)
            known: CatalogInfo | None = CatalogInfo(catalog_id, self.name, enabled=True)
            if copied is not None and check_catalog:
                try:
                    known = self.get(catalog_id)  # None: gone, found or made again below
                except TokenRevoked:
                    raise
                except AppError as error:
                    return CatalogView(None, notice=explain(error))
                if known is not None and not known.enabled:
                    configure = self.configure_url(catalog_id)
                    return CatalogView(known, configure, notice=DISABLED_NOTICE)
            if copied is not None and known is not None:
                notice = None
                if not copied.products and not (query.after or query.before):
                    notice = NOT_FOUND_NOTICE if query.search else COPY_EMPTY_NOTICE
                return CatalogView(
                    known,
                    self.configure_url(catalog_id),
                    copied.products,
                    copied.next_cursor,
                    notice,
                    copied.copied_at,
                    copied.stale,
                    copied.previous_cursor,
                    copied.total,
                    copied.matched,
                )
        after = query.after
        limit = query.limit
        try:
            catalog = self.get(catalog_id) if catalog_id else None
            if catalog is None:
                catalog = self.ensure()
            configure = self.configure_url(catalog.id)
            if not catalog.enabled:
                return CatalogView(catalog, configure, notice=DISABLED_NOTICE)
            page = self.mapped_products(catalog.id, limit=limit, after=after)
        except TokenRevoked:
            raise
        except AppError as error:
            return CatalogView(None, notice=explain(error))
        if page.unusable:
            return CatalogView(catalog, configure, notice=explain_unusable(page.unusable))
        notice = None if page.products or after else EMPTY_NOTICE
        if query.search:
            notice = NO_SEARCH_NOTICE
        return CatalogView(catalog, configure, page.products, page.next_cursor, notice)

    def product(self, uuid: str) -> ProductView:
        """One product of the catalog: from the local copy when it has it, else the PIM."""
        catalog_id = self.store.catalog_id(self.pim_url)
        if not catalog_id:
            return ProductView(None, notice="The App has no catalog in this PIM yet.")
        if self.copy and (copied := self.copy.product(self.pim_url, catalog_id, uuid)):
            return ProductView(*copied)
        try:
            found = self.api.get(catalog_path(catalog_id, "mapped-products", uuid))
        except PimHttpError as error:
            if error.pim_status in (404, 422):  # not in the selection, or no product uuid
                return ProductView(None, notice="This product is not in the App's catalog.")
            raise
        if not isinstance(found, dict) or "uuid" not in found:  # disabled: 200 with why (§2.1)
            reason = found.get("error") if isinstance(found, dict) else None
            notice = explain_unusable(str(reason)) if reason else "The PIM sent no product."
            return ProductView(None, notice=notice)
        return ProductView(found)


DISABLED_NOTICE = (
    "The catalog is disabled. In your PIM (Configure in your PIM), enable it, choose its "
    "products and map the App's fields; its products then show here."
)
COPY_EMPTY_NOTICE = "The last sync found no product in the catalog."
NOT_FOUND_NOTICE = "No product's title or SKU holds this text."
NO_SEARCH_NOTICE = (
    "Search reads the App's copy of the catalog, and there is none yet: these are the PIM's "
    "products, unfiltered. Once a sync has run, search finds them in the copy."
)
EMPTY_NOTICE = (
    "The catalog is enabled but selects no product: change its product selection in your PIM."
)


def explain_unusable(reason: str) -> str:
    """The PIM's 200-with-error answer (§2.1), in plain words."""
    if "disabled" in reason:
        return DISABLED_NOTICE
    if "mapping schema" in reason:
        return (
            "The catalog has no product mapping schema yet: the App pushes it when you connect "
            "again."
        )
    return f"The PIM cannot give the catalog's products: {reason}"


def explain(error: AppError) -> str:
    """Why the App's catalog could not be found, created or read, and what to do."""
    if isinstance(error, PimHttpError) and error.pim_status == 403:
        return (
            "The App may not use catalogs in this PIM: connect it again to grant the catalog "
            f"scopes ({' '.join(CATALOG_SCOPES)})."
        )
    if isinstance(error, PimHttpError) and error.pim_status == 422:
        said = "; ".join(str(e.get("message", "")) for e in error.errors) or error.pim_message
        return (
            f"The PIM refused to create the App's catalog: {said}. A PIM keeps at most 200 "
            "catalogs per App: delete the ones you no longer use in the PIM, then reload."
        )
    return f"{error.message} The App tries again on your next visit."
