"""The local PIM's products: a seeded catalog, and the product endpoints of Akeneo's REST API.

Bodies, status codes and error texts follow Akeneo's API reference
(https://api.akeneo.com/documentation/responses.html) and its server's own end-to-end tests: 201
with a Location on create, 204 with a Location on update, 204 on delete; list upserts take
`application/vnd.akeneo.collection+json` (one JSON object a line, 100 at most: 413) and answer
one NDJSON line per item, in order, a failed line never stopping the others; offset pages stop
at 10,000 items (422: use search_after).

Products are generated from their number on demand, so a catalog of 10,000 realistic products
(3 locales × 3 channels, 10 to 20 KB each) costs no memory until written to.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import random
import struct
import threading
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

COLLECTION_TYPE = "application/vnd.akeneo.collection+json"
MAX_RESOURCES = 100
MAX_LINE = 1_000_000  # characters of one NDJSON line
MAX_OFFSET_ITEMS = 10_000
FAMILIES = ("shoes", "tshirts", "mugs", "lamps")
# a tree: master, then a category a family and one for every fifth product (the sale)
CATEGORIES = ("master", *(f"{family}_all" for family in FAMILIES), "sale")
COLORS = ("black", "white", "red", "blue", "green")
LOCALES = ("en_US", "fr_FR", "de_DE")
CHANNELS = ("ecommerce", "mobile", "print")
_NAMESPACE = uuid.UUID("6f1b2d4e-1c2a-4e5f-9a8b-7c6d5e4f3a2b")
_WORDS = (
    "soft durable light classic modern cotton leather steel matte glossy handmade organic "
    "recycled warm bright compact ergonomic timeless elegant sturdy washable breathable"
).split()
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@functools.cache
def _paragraphs(count: int, size: int) -> tuple[str, ...]:
    rng = random.Random("devpim-catalog")  # the same catalog on every start
    out = []
    for _ in range(count):
        words: list[str] = []
        length = 0
        while length < size:
            words.append(rng.choice(_WORDS))
            length += len(words[-1]) + 1
        out.append(" ".join(words).capitalize()[:size] + ".")
    return tuple(out)


#: (sort key, uuid) of every product, in order
Keys = tuple[tuple[str, str], ...]


def iso(moment: datetime) -> str:
    """Akeneo's date format: ISO 8601 with the offset (2026-01-01T10:00:00+00:00)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Catalog:
    """The PIM's products: `count` seeded ones, then whatever the API wrote (in memory)."""

    def __init__(
        self, pim_url: str, count: int, *, text_size: int = 1400, media_bytes: int = 4096
    ) -> None:
        self.pim_url, self.media_bytes = pim_url, media_bytes
        self._texts = _paragraphs(64, text_size)
        self._written: dict[str, dict[str, Any] | None] = {}  # None: deleted
        self._seeded = {self.seed_uuid(n): n for n in range(count)}
        self._lock = threading.Lock()
        # sorted keys, as the PIM's search index keeps them: built once, dropped at each write
        self._indexes: dict[str, Keys] = {}
        self._writes = 0  # how many writes so far: an index built meanwhile is not kept
        #: told of every change: (created, updated or deleted, the uuid, "api" or "ui")
        self.listeners: list[Callable[[str, str, str], None]] = []

    @staticmethod
    def seed_uuid(number: int) -> str:
        """The uuid of seeded product `number` (stable across restarts)."""
        return str(uuid.uuid5(_NAMESPACE, f"product-{number}"))

    @staticmethod
    def _seed_facts(product_uuid: str, n: int) -> dict[str, Any]:
        """What a search filters on, without the values: cheap, as a search index answers."""
        moment = iso(_EPOCH + timedelta(minutes=n))
        return {
            "uuid": product_uuid,
            "enabled": n % 10 != 9,
            "family": FAMILIES[n % len(FAMILIES)],
            "categories": ["master", f"{FAMILIES[n % len(FAMILIES)]}_all"]
            + (["sale"] if n % 5 == 0 else []),
            "created": moment,
            "updated": moment,
        }

    def _seed(self, product_uuid: str, n: int) -> dict[str, Any]:
        facts = self._seed_facts(product_uuid, n)
        media = f"{n % 10}/{n % 7}/{n % 5}/{hashlib.sha1(str(n).encode()).hexdigest()}_pic.png"
        media_link = f"{self.pim_url}/api/rest/v1/media-files/{media}/download"
        text = self._texts
        noun = FAMILIES[n % len(FAMILIES)].rstrip("s")

        def value(data: Any, locale: str | None = None, scope: str | None = None) -> Any:
            return {"locale": locale, "scope": scope, "data": data}

        return {
            "uuid": product_uuid,
            "identifier": f"SKU-{n:05d}",
            "enabled": facts["enabled"],
            "family": facts["family"],
            "categories": facts["categories"],
            "groups": [],
            "parent": None,
            "values": {
                "sku": [value(f"SKU-{n:05d}")],
                "name": [value(f"{_WORDS[n % 21].title()} {noun} {n}", loc) for loc in LOCALES],
                "description": [
                    value(text[(n + 7 * i) % len(text)], loc, ch)
                    for i, (loc, ch) in enumerate((lo, c) for lo in LOCALES for c in CHANNELS)
                ],
                "price": [
                    value(
                        [
                            {"amount": f"{5 + n % 95}.90", "currency": "EUR"},
                            {"amount": f"{6 + n % 95}.50", "currency": "USD"},
                        ]
                    )
                ],
                "color": [value(COLORS[n % len(COLORS)])],
                "weight": [value({"amount": f"{(n % 50) / 10 + 0.1:.4f}", "unit": "KILOGRAM"})],
                "image": [{**value(media), "_links": {"download": {"href": media_link}}}],
            },
            "created": facts["created"],
            "updated": facts["updated"],
            "associations": {},
            "quantified_associations": {},
        }

    def get(self, product_uuid: str) -> dict[str, Any] | None:
        """One product, or None."""
        with self._lock:
            if product_uuid in self._written:
                return self._written[product_uuid]
        number = self._seeded.get(product_uuid)
        return None if number is None else self._seed(product_uuid, number)

    def facts(self, product_uuid: str) -> dict[str, Any] | None:
        """What a search filters on (enabled, family, categories, dates), or None: a written
        product whole, a seeded one without building its values."""
        with self._lock:
            if product_uuid in self._written:
                return self._written[product_uuid]
        number = self._seeded.get(product_uuid)
        return None if number is None else self._seed_facts(product_uuid, number)

    def keys(self, by: str) -> Keys:
        """(sort key, uuid) of every product, sorted by uuid or identifier: no product is built."""
        with self._lock:
            index = self._indexes.get(by)
            written, writes = dict(self._written), self._writes
        if index is None:
            index = self._index(by, written)
            with self._lock:
                if writes == self._writes:  # no write meanwhile: keep it for the next page
                    self._indexes[by] = index
        return index

    @staticmethod
    def after(keys: Keys, key: str) -> int:
        """Where the keys greater than `key` start (a search_after cursor)."""
        return bisect.bisect_right(keys, key, key=lambda entry: entry[0])

    def _index(self, by: str, written: dict[str, dict[str, Any] | None]) -> Keys:
        keys = []
        for product_uuid in set(self._seeded) | set(written):
            if product_uuid in written:
                product = written[product_uuid]
                if product is None:
                    continue
                identifier = str(product.get("identifier", ""))
            else:
                identifier = f"SKU-{self._seeded[product_uuid]:05d}"
            keys.append((product_uuid if by == "uuid" else identifier, product_uuid))
        return tuple(sorted(keys))

    def upsert(self, product_uuid: str, patch: dict[str, Any], via: str = "api") -> int:
        """Create (201) or update (204) a product from a patch; ValueError(body) when invalid."""
        _validate(patch)
        current = self.get(product_uuid)
        now = iso(datetime.now(UTC))
        product = dict(current or {"uuid": product_uuid, "created": now, "values": {}})
        values = dict(product.get("values", {}))
        values.update(patch.get("values", {}))
        product.update({k: v for k, v in patch.items() if k != "values"}, values=values)
        product["uuid"], product["updated"] = product_uuid, now
        with self._lock:
            self._written[product_uuid] = product
            self._indexes.clear()
            self._writes += 1
        self._tell("updated" if current else "created", product_uuid, via)
        return 204 if current else 201

    def _tell(self, kind: str, product_uuid: str, via: str) -> None:
        for listener in self.listeners:
            listener(kind, product_uuid, via)

    def snapshot(self) -> dict[str, dict[str, Any] | None]:
        """The products the API wrote or deleted."""
        with self._lock:
            return dict(self._written)

    def restore(self, saved: dict[str, dict[str, Any] | None]) -> None:
        """Take back a snapshot."""
        with self._lock:
            self._written = dict(saved)
            self._indexes.clear()
            self._writes += 1

    def delete(self, product_uuid: str, via: str = "api") -> bool:
        """Delete a product; False when there was none."""
        if self.get(product_uuid) is None:
            return False
        with self._lock:
            self._written[product_uuid] = None
            self._indexes.clear()
            self._writes += 1
        self._tell("deleted", product_uuid, via)
        return True


class Invalid(ValueError):
    """A 422 with its body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.body = {"code": 422, **body}


def _validate(patch: dict[str, Any]) -> None:
    family = patch.get("family")
    if family is not None and family not in FAMILIES:
        raise Invalid(
            {
                "message": 'Property "family" expects a valid family code. The family does not '
                f'exist, "{family}" given. Check the expected format on the API documentation.'
            }
        )
    errors = [
        {
            "property": "values",
            "message": "This value is too long. It should have 255 characters or less.",
            "attribute_code": "name",
            "locale": entry.get("locale"),
            "scope": entry.get("scope"),
        }
        for entry in patch.get("values", {}).get("name", [])
        if isinstance(entry, dict) and len(str(entry.get("data", ""))) > 255
    ]
    if errors:
        raise Invalid({"message": "Validation failed.", "errors": errors})


# -- the endpoints ---------------------------------------------------------------------------

Guard = Callable[[str], tuple[Any, int] | None]


def product_routes(catalog: Callable[[], Catalog], guard: Guard) -> Blueprint:
    """The product endpoints over `catalog()`; `guard(scope)` answers 401/403 or lets through."""
    bp = Blueprint("products", __name__)
    base = "/api/rest/v1/products-uuid"

    def location(product_uuid: str) -> dict[str, str]:
        return {"Location": f"{catalog().pim_url}{base}/{product_uuid}"}

    @bp.get(base)
    def list_products() -> tuple[Response, int]:
        return guard("read_products") or _page(catalog(), base, by="uuid")

    @bp.get("/api/rest/v1/products")
    def list_products_by_identifier() -> tuple[Response, int]:
        return guard("read_products") or _page(catalog(), "/api/rest/v1/products", by="identifier")

    @bp.get(f"{base}/<product_uuid>")
    def get_product(product_uuid: str) -> tuple[Response, int]:
        if refused := guard("read_products"):
            return refused
        product = catalog().get(product_uuid)
        if product is None:
            return _not_found(product_uuid)
        return jsonify(product), 200

    @bp.patch(f"{base}/<product_uuid>")
    def patch_product(product_uuid: str) -> tuple[Response, int]:
        if refused := guard("write_products"):
            return refused
        patch = request.get_json(silent=True)
        if not isinstance(patch, dict):
            return jsonify(code=400, message="Invalid json message received"), 400
        if patch.get("uuid", product_uuid) != product_uuid:
            return jsonify(
                code=422,
                message=f'The uuid "{patch["uuid"]}" provided in the request body must match the '
                f'uuid "{product_uuid}" provided in the url.',
            ), 422
        try:
            status = catalog().upsert(product_uuid, patch)
        except Invalid as invalid:
            return jsonify(invalid.body), 422
        return Response(status=status, headers=location(product_uuid)), status

    @bp.post(base)
    def create_product() -> tuple[Response, int]:
        if refused := guard("write_products"):
            return refused
        patch = request.get_json(silent=True)
        if not isinstance(patch, dict):
            return jsonify(code=400, message="Invalid json message received"), 400
        product_uuid = str(patch.get("uuid") or uuid.uuid4())
        if catalog().get(product_uuid) is not None:
            return jsonify(
                code=422,
                message="Validation failed.",
                errors=[
                    {
                        "property": "uuid",
                        "message": "The same uuid is already assigned to another product.",
                    }
                ],
            ), 422
        try:
            catalog().upsert(product_uuid, patch)
        except Invalid as invalid:
            return jsonify(invalid.body), 422
        return Response(status=201, headers=location(product_uuid)), 201

    @bp.delete(f"{base}/<product_uuid>")
    def delete_product(product_uuid: str) -> tuple[Response, int]:
        if refused := guard("delete_products"):
            return refused
        if not catalog().delete(product_uuid):
            return _not_found(product_uuid)
        return Response(status=204), 204

    @bp.patch(base)
    def upsert_products() -> tuple[Response, int]:
        if refused := guard("write_products"):
            return refused
        if request.mimetype != COLLECTION_TYPE:
            return jsonify(
                code=415,
                message=f'"{request.mimetype}" in "Content-Type" header is not valid. Only '
                f'"{COLLECTION_TYPE}" is allowed.',
            ), 415
        lines = request.get_data(as_text=True).split("\n")
        if len(lines) > MAX_RESOURCES:
            return jsonify(
                code=413,
                message=f"Too many resources to process, {MAX_RESOURCES} is the maximum allowed.",
            ), 413
        answers = [_upsert_line(catalog(), n, line) for n, line in enumerate(lines, start=1)]
        body = "\n".join(json.dumps(a, separators=(",", ":")) for a in answers)
        return Response(body, content_type=COLLECTION_TYPE), 200

    @bp.get("/api/rest/v1/media-files/<path:code>/download")
    def download_media(code: str) -> tuple[Response, int]:
        if refused := guard("read_products"):
            return refused
        return Response(png(code, catalog().media_bytes), content_type="image/png"), 200

    return bp


PIXELS = 480  # a product photo's side: the App's product page shows it large


def png(code: str, size: int) -> bytes:
    """A real PNG of one colour chosen by `code`, as large as a product photo on a page
    (PIXELS square), padded to `size` bytes with a tEXt chunk (a large media file that is still
    a valid image)."""
    red, green, blue = hashlib.sha256(code.encode()).digest()[:3]
    row = b"\x00" + bytes([red, green, blue]) * PIXELS
    parts = [
        _chunk(b"IHDR", struct.pack(">IIBBBBB", PIXELS, PIXELS, 8, 2, 0, 0, 0)),
        _chunk(b"IDAT", zlib.compress(row * PIXELS)),
    ]
    padding = size - 8 - sum(map(len, parts)) - 12 - 12
    if padding > 8:
        parts.append(_chunk(b"tEXt", b"Comment\x00" + b"x" * (padding - 8)))
    return b"\x89PNG\r\n\x1a\n" + b"".join(parts) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _upsert_line(catalog: Catalog, number: int, line: str) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        return {"line": number, "status_code": 413, "message": "Line is too long."}
    try:
        patch = json.loads(line)
    except ValueError:
        patch = None
    if not isinstance(patch, dict):
        return {"line": number, "status_code": 400, "message": "Invalid json message received"}
    product_uuid = patch.get("uuid")
    if not isinstance(product_uuid, str) or not product_uuid.strip():
        return {"line": number, "status_code": 422, "message": "Uuid is missing."}
    try:
        status = catalog.upsert(product_uuid, patch)
    except Invalid as invalid:
        return {"line": number, "uuid": product_uuid, "status_code": 422, **_without_code(invalid)}
    return {"line": number, "uuid": product_uuid, "status_code": status}


def _without_code(invalid: Invalid) -> dict[str, Any]:
    return {k: v for k, v in invalid.body.items() if k != "code"}


def _not_found(product_uuid: str) -> tuple[Response, int]:
    return jsonify(
        code=404,
        message=f'Product "{product_uuid}" does not exist or you do not have permission to '
        "access it.",
    ), 404


def _page(catalog: Catalog, path: str, *, by: str) -> tuple[Response, int]:
    """One page of products, by offset (`page`) or by cursor (`search_after`), as Akeneo does."""
    args = request.args
    limit = args.get("limit", 10, type=int) or 10
    if not 1 <= limit <= 100:
        return jsonify(code=422, message="You cannot request more than 100 items."), 422
    cursor_mode = args.get("pagination_type") == "search_after"
    keys = catalog.keys(by)
    base = f"{catalog.pim_url}{path}"
    if cursor_mode:
        after = args.get("search_after", "")
        start = catalog.after(keys, after)
        chunk = keys[start : start + limit]
        query = {"pagination_type": "search_after", "limit": limit}
        links: dict[str, Any] = {"self": {"href": f"{base}?{urlencode(query)}"}}
        links["first"] = links["self"]
        if start + limit < len(keys) and chunk:
            after_query = {**query, "search_after": chunk[-1][0]}
            links["next"] = {"href": f"{base}?{urlencode(after_query)}"}
        body: dict[str, Any] = {"_links": links}
    else:
        page = max(1, args.get("page", 1, type=int) or 1)
        if page * limit > MAX_OFFSET_ITEMS:
            return jsonify(
                code=422,
                message="You have reached the maximum number of pages you can retrieve with the "
                '"page" pagination type. Please use the search after pagination type instead',
            ), 422
        chunk = keys[(page - 1) * limit : page * limit]
        links = {"self": {"href": f"{base}?page={page}&limit={limit}"}}
        if page * limit < len(keys):
            links["next"] = {"href": f"{base}?page={page + 1}&limit={limit}"}
        body = {"_links": links, "current_page": page}
    items = []
    for key, product_uuid in chunk:
        product = catalog.get(product_uuid)
        if product is not None:
            items.append({"_links": {"self": {"href": f"{base}/{key}"}}, **product})
    body["_embedded"] = {"items": items}
    return jsonify(body), 200
