"""The sync's pages: Sync now, the status the connected page polls, the trigger on a visit."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, session, url_for
from werkzeug.wrappers import Response

from . import current
from .catalogs import CatalogView
from .security import check_csrf
from .sync import describe, progress
from .sync_store import FAILED, STOPPED, SyncStatus
from .tasks import start_sync

bp = Blueprint("sync", __name__)
bp.add_app_template_global(describe, "describe_sync")
bp.add_app_template_global(progress, "sync_progress")


@bp.post("/sync")
def sync_now() -> Response:
    """Sync now: read every product of the catalog again (changes of its selection or mapping
    in the PIM do not change the products' `updated`: only a full read sees them)."""
    check_csrf()
    pim_url = current.flow().connected_pim(session)
    if pim_url:
        if start_sync(pim_url, full=True):
            flash("The sync started: its progress shows below.")
        elif current.store().catalog_id(pim_url):
            flash("A sync is already running: its progress shows below.")
        else:
            flash("The App has no catalog in this PIM yet: it is made when the page loads.")
    return redirect(url_for("app.home"))


@bp.get("/sync/status")
def status() -> tuple[Response, int]:
    """The connected PIM's sync as JSON, for the progress bar (static/sync.js)."""
    pim_url = current.flow().connected_pim(session)
    if not pim_url:
        return jsonify(error="Sign in from your PIM first."), 401
    found = current.sync_store().status(pim_url)
    body = found.as_json() if found else {"state": "never"}
    return jsonify({**body, "text": describe(found), "progress": progress(found)}), 200


def status_for_page(pim_url: str, view: CatalogView | None) -> SyncStatus | None:
    """The PIM's sync for the connected page; started when the page sees the catalog enabled
    and no sync has copied it yet, or the last one stopped (its cause may be gone now)."""
    sync = current.sync_store().status(pim_url)
    enabled = view is not None and view.catalog is not None and view.catalog.enabled
    if enabled and (sync is None or sync.state in (STOPPED, FAILED)):
        start_sync(pim_url)
        sync = current.sync_store().status(pim_url)
    return sync
