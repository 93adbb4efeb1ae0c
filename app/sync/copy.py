"""The copy of each PIM's catalog, and what one run knows of the catalog while it reads it.

- `synced_products`: one row per product, its mapped values as JSON;
- `sync_selection`: the uuids the run's reading of `product-uuids` listed (what the copy may
  hold: a product outside it is never stored, and a product of the copy missing from it is
  removed at the end, after a second reading agrees);
- `sync_pages`: the pages the run has read (a list that loops is noticed at once);
- `sync_skipped`: the products the run could not store, and why;
- `sync_removed`: when a product was found gone (a deletion event, a read that found it out of
  the selection): a page read before then never brings it back.

Every product row carries when it was read (`synced_at`, the moment its page or its own read was
asked for): a write of an older reading never replaces a newer one. So single products read
again on an event (`changes.py`) and a run reading every page never race into a wrong copy.

The functions take the transaction (`db`) of the step that calls them: a page is written with its
cursor, or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Index, String, Text, cast, delete, exists, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, upsert

#: bytes of one product's mapped values: a bigger one is skipped (and said), so that a page of
#: the products page never loads more than about 2.5 MB of copy
MAX_PRODUCT_BYTES = 100_000
MAX_UUID = 36  # characters: a product uuid is a UUID
CHUNK = 500  # values per statement: far below what SQLite (32,766) and PostgreSQL (65,535) take


class SyncedProductRow(Base):
    """One product of a PIM's catalog as the App last read it (its mapped values)."""

    __tablename__ = "synced_products"
    __table_args__ = (Index("ix_synced_products_run", "pim_url", "catalog_id", "seen_run"),)

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    data: Mapped[str] = mapped_column(Text)  # the mapped product, as JSON
    seen_run: Mapped[str] = mapped_column(String(32))  # the last run that stored it
    synced_at: Mapped[datetime]


class SelectionRow(Base):
    """A uuid that the run in progress read in the catalog's `product-uuids`."""

    __tablename__ = "sync_selection"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)


class PageRow(Base):
    """A page the run in progress has read (the hash of its path)."""

    __tablename__ = "sync_pages"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    page_hash: Mapped[str] = mapped_column(String(64), primary_key=True)


class SkippedRow(Base):
    """A product the run in progress could not store, and why."""

    __tablename__ = "sync_skipped"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))


class RemovedRow(Base):
    """A product the App found gone from the catalog, and when."""

    __tablename__ = "sync_removed"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    removed_at: Mapped[datetime]


_products, _selection, _pages, _skipped, _removed = (
    Base.metadata.tables[row.__tablename__]
    for row in (SyncedProductRow, SelectionRow, PageRow, SkippedRow, RemovedRow)
)
product_table = _products  # the copy, for the change jobs' joins
KEEP_REMOVALS = timedelta(days=1)  # far longer than a page waits between its read and its save
_RUN_TABLES = (_selection, _pages, _skipped)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _insert_new(db: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT the rows whose key is not there yet (the others stay as they are)."""
    key = [column.name for column in table.primary_key]
    for chunk in _chunks(rows):
        upsert(db, table, chunk, key=key, keep_existing=True)


def save(db: Connection, rows: list[dict[str, Any]]) -> None:
    """Store product rows (see product_rows), unless a later reading of one is stored (a product
    read again on an event after a run read its page)."""
    upsert(db, _products, rows, key=("pim_url", "catalog_id", "uuid"), newer_wins="synced_at")


def product_rows(
    products: Iterable[Mapping[str, Any]], pim_url: str, catalog_id: str, run_id: str, at: datetime
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rows to store for a page of mapped products (one per uuid), and the products that
    cannot be stored: {uuid: why}."""
    rows: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for product in products:
        uuid = str(product.get("uuid", ""))
        if not 0 < len(uuid) <= MAX_UUID or not uuid.isprintable():
            skipped[uuid[:64] or "(none)"] = "its uuid is not a product uuid"
            continue
        data = json.dumps(product, ensure_ascii=False, separators=(",", ":"))
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            # a lone surrogate (half of an emoji) is valid JSON text but no valid UTF-8: kept
            # escaped, and read back as the PIM sent it
            data = json.dumps(product, separators=(",", ":"))
        if len(data) > MAX_PRODUCT_BYTES:
            skipped[uuid] = f"its mapped values are over {MAX_PRODUCT_BYTES // 1000} KB"
            continue
        rows[uuid] = {
            "pim_url": pim_url,
            "catalog_id": catalog_id,
            "uuid": uuid,
            "data": data,
            "seen_run": run_id,
            "synced_at": at,
        }
    return list(rows.values()), skipped


def removed_since(db: Connection, pim_url: str, uuids: Sequence[str], moment: datetime) -> set[str]:
    """Those of `uuids` found gone after `moment` (a page read before must not store them)."""
    found: set[str] = set()
    for chunk in _chunks(uuids):
        query = select(_removed.c.uuid).where(
            _removed.c.pim_url == pim_url,
            _removed.c.uuid.in_(chunk),
            _removed.c.removed_at > moment,
        )
        found.update(db.execute(query).scalars())
    return found


def remove(db: Connection, pim_url: str, uuid: str, moment: datetime) -> None:
    """The product is gone from the catalog as of `moment`: drop it from the copy (unless it was
    read later) and from the run's selection, and remember when."""
    db.execute(
        delete(_products).where(
            _products.c.pim_url == pim_url,
            _products.c.uuid == uuid,
            _products.c.synced_at <= moment,
        )
    )
    db.execute(delete(_selection).where(_selection.c.pim_url == pim_url, _selection.c.uuid == uuid))
    row = {"pim_url": pim_url, "uuid": uuid, "removed_at": moment}
    upsert(db, _removed, row, key=("pim_url", "uuid"), newer_wins="removed_at")


def trim_removals(db: Connection, before: datetime) -> None:
    """Forget removals older than `before` (no page in flight is that old)."""
    db.execute(delete(_removed).where(_removed.c.removed_at < before))


def products(
    db: Connection,
    pim_url: str,
    catalog_id: str,
    limit: int,
    after: str | None = None,
    *,
    before: str | None = None,
    search: str | None = None,
) -> list[dict[str, Any]]:
    """Products of the copy, by uuid as the PIM sorts them: `limit` after the uuid `after`, or
    the `limit` just before the uuid `before`; with `search`, those whose title or SKU holds
    it (any case)."""
    query = select(_products.c.data).where(_of_catalog(db, pim_url, catalog_id, search))
    if before:
        query = query.where(_products.c.uuid < before).order_by(_products.c.uuid.desc())
    else:
        query = query.where(_products.c.uuid > (after or "")).order_by(_products.c.uuid)
    found = [json.loads(data) for (data,) in db.execute(query.limit(limit))]
    return found[::-1] if before else found


def count(db: Connection, pim_url: str, catalog_id: str, search: str | None = None) -> int:
    """How many products the copy holds (matching `search`)."""
    where = _of_catalog(db, pim_url, catalog_id, search)
    return int(db.execute(select(func.count()).select_from(_products).where(where)).scalar_one())


def product(
    db: Connection, pim_url: str, catalog_id: str, uuid: str
) -> tuple[dict[str, Any], datetime] | None:
    """One product of the copy, and when it was read."""
    query = select(_products.c.data, _products.c.synced_at).where(
        _of_catalog(db, pim_url, catalog_id, None), _products.c.uuid == uuid
    )
    row = db.execute(query).first()
    return (json.loads(row.data), row.synced_at) if row else None


SEARCHED = ("title", "sku")  # the targets a search looks into


def _of_catalog(db: Connection, pim_url: str, catalog_id: str, search: str | None) -> Any:
    where = (_products.c.pim_url == pim_url) & (_products.c.catalog_id == catalog_id)
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        fields = [_mapped_text(db.dialect.name, name) for name in SEARCHED]
        where = where & or_(*(func.lower(f).like(pattern, escape="\\") for f in fields))
    return where


def _mapped_text(dialect: str, name: str) -> Any:
    """A target of the stored JSON, as text, in the database's own JSON functions."""
    if dialect == "postgresql":
        return cast(_products.c.data, postgresql.JSON)[name].astext
    return func.json_extract(_products.c.data, f"$.{name}")


def select_uuids(db: Connection, pim_url: str, uuids: Iterable[str]) -> None:
    """Record uuids the catalog's `product-uuids` listed (a uuid listed twice counts once)."""
    listed = {u for u in uuids if 0 < len(u) <= MAX_UUID}
    _insert_new(db, _selection, [{"pim_url": pim_url, "uuid": u} for u in sorted(listed)])


def selection_size(db: Connection, pim_url: str) -> int:
    """How many distinct uuids the run has read in the selection."""
    query = select(func.count()).select_from(_selection).where(_selection.c.pim_url == pim_url)
    return int(db.execute(query).scalar_one())


def storable(db: Connection, pim_url: str, uuids: Sequence[str], read_at: datetime) -> set[str]:
    """Those of `uuids` that the selection listed and that were not found gone after `read_at`
    (a page asked for before a product's deletion must not bring it back)."""
    found: set[str] = set()
    gone_since = exists().where(
        _removed.c.pim_url == pim_url,
        _removed.c.uuid == _selection.c.uuid,
        _removed.c.removed_at > read_at,
    )
    for chunk in _chunks(uuids):
        query = select(_selection.c.uuid).where(
            _selection.c.pim_url == pim_url, _selection.c.uuid.in_(chunk), ~gone_since
        )
        found.update(db.execute(query).scalars())
    return found


def first_visit(db: Connection, pim_url: str, page: str) -> bool:
    """Record that the run reads `page`; False when it read it already (the list loops)."""
    row = {"pim_url": pim_url, "page_hash": hashlib.sha256(page.encode()).hexdigest()}
    return upsert(db, _pages, row, key=("pim_url", "page_hash"), keep_existing=True) == 1


def skip(db: Connection, pim_url: str, skipped: Mapping[str, str]) -> None:
    """Remember products the run could not store (said when it finishes)."""
    rows = [{"pim_url": pim_url, "uuid": u, "reason": why} for u, why in skipped.items()]
    _insert_new(db, _skipped, rows)


def skipped_message(db: Connection, pim_url: str) -> str | None:
    """The products the run could not store, in a sentence (None when it stored them all)."""
    of_pim = _skipped.c.pim_url == pim_url
    count = db.execute(select(func.count()).select_from(_skipped).where(of_pim)).scalar_one()
    if not count:
        return None
    listed = "; ".join(
        f"{uuid}: {why}"
        for uuid, why in db.execute(
            select(_skipped.c.uuid, _skipped.c.reason).where(of_pim).limit(3)
        )
    )
    more = f" (and {count - 3} more)" if count > 3 else ""
    return f"Some products were not copied: {listed}{more}."


def held(db: Connection, pim_url: str, catalog_id: str) -> int:
    """How many products of the selection the copy holds."""
    query = select(func.count()).select_from(_products)
    query = query.where(_in_copy_and_selected(pim_url, catalog_id))
    return int(db.execute(query).scalar_one())


def unselected(db: Connection, pim_url: str, catalog_id: str) -> int:
    """How many products of the copy the selection did not list (or of another catalog)."""
    query = select(func.count()).select_from(_products).where(_not_selected(pim_url, catalog_id))
    return int(db.execute(query).scalar_one())


def remove_unselected(db: Connection, pim_url: str, catalog_id: str) -> int:
    """Delete the products the selection did not list, and the copy of another catalog (one
    made again after a disconnect); how many of this catalog's were removed."""
    others = (_products.c.pim_url == pim_url) & (_products.c.catalog_id != catalog_id)
    db.execute(delete(_products).where(others))
    return int(db.execute(delete(_products).where(_not_selected(pim_url, catalog_id))).rowcount)


def clear_run(db: Connection, pim_url: str) -> None:
    """Forget what the run knew (its selection, pages and skipped products)."""
    for table in _RUN_TABLES:
        db.execute(delete(table).where(table.c.pim_url == pim_url))


def forget(db: Connection, pim_url: str) -> None:
    """Delete the PIM's copy and what its run knew."""
    clear_run(db, pim_url)
    db.execute(delete(_products).where(_products.c.pim_url == pim_url))
    db.execute(delete(_removed).where(_removed.c.pim_url == pim_url))


def _listed(pim_url: str) -> Any:
    return exists().where(_selection.c.pim_url == pim_url, _selection.c.uuid == _products.c.uuid)


def _in_copy_and_selected(pim_url: str, catalog_id: str) -> Any:
    return (
        (_products.c.pim_url == pim_url) & (_products.c.catalog_id == catalog_id) & _listed(pim_url)
    )


def _not_selected(pim_url: str, catalog_id: str) -> Any:
    return (_products.c.pim_url == pim_url) & (
        (_products.c.catalog_id != catalog_id) | ~_listed(pim_url)
    )
