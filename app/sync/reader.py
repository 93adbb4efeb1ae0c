"""The sync's copy as the catalogs feature reads it (its `ProductCopy`): the products pages,
their search and one product, with no call to the PIM."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..catalogs.catalog import CopiedPage, PageQuery
from . import copy
from .status import STOPPED
from .store import SyncStore


class CopyReader:
    """Pages of a PIM's catalog read from the copy, once a sync of that catalog has finished."""

    def __init__(self, store: SyncStore) -> None:
        self.store = store

    def page(self, pim_url: str, catalog_id: str, query: PageQuery) -> CopiedPage | None:
        """A page of the copy (None when no run of this catalog finished: the PIM is asked).

        A catalog made again (after a disconnect) has a new id: its copy starts empty."""
        status = self.store.status(pim_url)
        if status is None or not status.has_copy_of(catalog_id) or not status.last_finished_at:
            return None
        with self.store.engine.connect() as db:
            found = copy.products(
                db,
                pim_url,
                catalog_id,
                query.limit + 1,
                query.after,
                before=query.before,
                search=query.search,
            )
            total = copy.count(db, pim_url, catalog_id)
            matched = copy.count(db, pim_url, catalog_id, query.search) if query.search else None
        more = len(found) > query.limit  # one more than asked: there is a page beyond
        page = found[1:] if query.before and more else found[: query.limit]
        later = bool(query.before) or more  # coming back from a later page, or more after
        earlier = bool(query.after) or (bool(query.before) and more)
        stale = None
        if status.state == STOPPED:
            stale = f"{status.message} Until then, this is the copy as it was."
        return CopiedPage(
            page,
            next_cursor=str(page[-1]["uuid"]) if later and page else None,
            previous_cursor=str(page[0]["uuid"]) if earlier and page else None,
            copied_at=status.last_finished_at,
            total=total,
            matched=matched,
            stale=stale,
        )

    def product(
        self, pim_url: str, catalog_id: str, uuid: str
    ) -> tuple[dict[str, Any], datetime] | None:
        """One product of the copy, and when it was read."""
        with self.store.engine.connect() as db:
            return copy.product(db, pim_url, catalog_id, uuid)
