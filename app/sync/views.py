"""The sync's pages: its panel on the connected page, Sync now, the status the panel polls."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, session, url_for
from werkzeug.wrappers import Response

from .. import current as core
from ..catalogs import current as catalogs
from ..catalogs.views import panel_view
from ..security import check_csrf
from ..store import Connection
from . import current
from .status import FAILED, STOPPED, SyncStatus, describe, progress
from .tasks import queue_sync

bp = Blueprint(
    "sync",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/sync/static",
)
bp.add_app_template_global(describe, "describe_sync")
bp.add_app_template_global(progress, "sync_progress")


def panel(connection: Connection) -> dict[str, Any] | None:
    """The connected page's sync panel: where the sync stands, its progress, Sync now.

    Shown once the catalog is enabled or a sync ran; it queues a sync when the catalog is
    enabled and none has copied it yet, or the last one stopped (its cause may be gone now).
    """
    view = panel_view(connection.pim_url)
    if view.catalog is None:
        return None  # the catalog panel says why there is none
    sync = queue_sync_if_due(connection.pim_url, view.catalog.id, enabled=view.catalog.enabled)
    if not view.catalog.enabled and (sync is None or not sync.active):
        return None  # disabled: the catalog panel says so, and Sync now would only fail
    return {"sync": sync}


def queue_sync_if_due(pim_url: str, catalog_id: str, *, enabled: bool) -> SyncStatus | None:
    """The sync of the catalog `catalog_id`, after queueing one when it is enabled and no sync
    has copied it yet, or the last one stopped or failed. A catalog made again after a
    disconnect has a new id: the old catalog's runs are no news of it."""
    found = current.store().status(pim_url)
    mine = found.of_catalog(catalog_id) if found else None
    idle = found is None or not found.active
    if enabled and idle and (mine is None or mine.state in (STOPPED, FAILED)):
        queue_sync(pim_url)
        found = current.store().status(pim_url)
        mine = found.of_catalog(catalog_id) if found else None
    return mine


@bp.post("/sync")
def sync_now() -> Response:
    """Sync now: read every product of the catalog again (changes of its selection or mapping
    in the PIM do not change the products' `updated`: only a full read sees them)."""
    check_csrf()
    pim_url = core.flow().connected_pim(session)
    if pim_url:
        if queue_sync(pim_url, full=True):
            pass  # the page shows the run from now on
        elif catalogs.store().catalog_id(pim_url):
            flash("A sync is already running: its progress shows below.")
        else:
            flash("The App has no catalog in this PIM yet: it is made when the page loads.")
    return redirect(url_for("app.home"))


@bp.get("/sync/status")
def status() -> tuple[Response, int]:
    """The connected PIM's sync as JSON, for the progress bar (sync.js)."""
    pim_url = core.flow().connected_pim(session)
    if not pim_url:
        return jsonify(error="Sign in from your PIM first."), 401
    found = current.store().status(pim_url)
    body = found.as_json() if found else {"state": "never"}
    return jsonify({**body, "text": describe(found), "progress": progress(found)}), 200
