"""The App's pages: thin views that call the flow, the PIM client and the store."""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from . import current
from .errors import AppError, PimError, PimHttpError, TokenRevoked
from .flow import CONNECTED_USER
from .security import check_csrf
from .sync_views import status_for_page
from .tasks import start_sync
from .tokens import NotConnected

log = logging.getLogger(__name__)

bp = Blueprint("app", __name__)

CHANNELS_PATH = "/api/rest/v1/channels"
# a page waits on the PIM for its list: bounded, so a PIM whose list never ends costs little
PAGE_LIST_BOUNDS: dict[str, Any] = {"max_items": 100, "max_pages": 5, "max_seconds": 5.0}
PREVIEW_SIZE = 5
PRODUCTS_PER_PAGE = 25


@bp.get("/activate")
def activate() -> Response:
    """Activate URL: the PIM opens it with ?pim_url=…; send the user to the PIM's consent page."""
    return redirect(current.flow().start(session, request.args.get("pim_url")))


@bp.get("/callback")
def callback() -> Response:
    """Callback URL: the PIM comes back with ?code=…&state=… (or ?error=…)."""
    connection = current.flow().finish(session, request.args)
    try:
        catalog = current.catalogs(connection.pim_url).ensure()
    except AppError as error:
        # never undoes the connection: the page says what failed and tries again
        log.warning("catalog not made sure of pim=%s reason=%s", connection.pim_url, error.message)
    else:
        if catalog.enabled:  # a new catalog is disabled: the page starts the sync once enabled
            start_sync(connection.pim_url)
    return redirect(url_for("app.home"))


@bp.get("/")
def home() -> tuple[str, int] | str:
    """The connected page for a connected session, the welcome page otherwise."""
    pim_url = current.flow().connected_pim(session)
    connection = current.store().connection(pim_url) if pim_url else None
    if connection is None:
        return render_template("welcome.html", **_setup_info())

    user_sub = session.get(CONNECTED_USER)
    page: dict[str, Any] = {
        "connection": connection,
        "user": current.store().user(connection.pim_url, user_sub) if user_sub else None,
        "missing_scopes": [s for s in current.settings().scopes if s not in connection.scopes],
        "channels": None,
        "channels_cut": None,
        "api_error": None,
        "catalog": None,
        "sync": None,
    }
    status = 200
    if not connection.revoked:
        listing = current.app_api(connection.pim_url).items(CHANNELS_PATH, **PAGE_LIST_BOUNDS)
        try:
            page["channels"] = [str(channel.get("code", "?")) for channel in listing]
            page["channels_cut"] = listing.cut
        except TokenRevoked:
            # the App was disconnected in the PIM (now marked so): offer to reconnect, never loop
            page["connection"] = current.store().connection(connection.pim_url)
        except PimHttpError as error:
            page["api_error"] = error.message
            if error.pim_status == 403:
                said = error.pim_message.rstrip(".")
                page["api_error"] = (
                    f"The PIM refused to list its channels: {said}. The App needs the "
                    "read_channel_settings scope: ask the PIM for it above, or connect again."
                )
            status = error.status
        except PimError as error:
            page["api_error"] = error.message
            status = error.status
    if not page["connection"].revoked:
        # apart from the channels: the catalog explains its own failures, a channel error not
        try:
            page["catalog"] = current.catalogs(connection.pim_url).view(limit=PREVIEW_SIZE)
        except TokenRevoked:
            page["connection"] = current.store().connection(connection.pim_url)
        else:
            page["sync"] = status_for_page(connection.pim_url, page["catalog"])
    if page["connection"].revoked:
        status = 401
    return render_template("connected.html", **page), status


@bp.get("/products")
def products() -> Response | str:
    """The catalog's mapped products, a page at a time (the PIM's search_after cursor)."""
    pim_url = current.flow().connected_pim(session)
    if not pim_url:
        return redirect(url_for("app.home"))
    catalogs = current.catalogs(pim_url)
    after = request.args.get("after") or None
    sync = current.sync_store().status(pim_url)
    catalog_id = current.store().catalog_id(pim_url)
    if sync and catalog_id and sync.has_copy_of(catalog_id):
        # a sync has copied the catalog: read the copy (no PIM call), and say from when
        view = catalogs.copied_view(
            catalog_id,
            current.sync_store().products(
                pim_url, catalog_id, limit=PRODUCTS_PER_PAGE + 1, after=after
            ),
            PRODUCTS_PER_PAGE,
        )
    else:
        try:
            view = catalogs.view(limit=PRODUCTS_PER_PAGE, after=after)
        except TokenRevoked:
            return redirect(url_for("app.home"))  # the home page offers to reconnect
        sync = None
    return render_template(
        "products.html", view=view, targets=_targets(catalogs.schema), after=after, sync=sync
    )


@bp.get("/media")
def media() -> Response:
    """An image target of a mapped product, fetched with this browser's connection's token."""
    pim_url = current.flow().connected_pim(session)
    if not pim_url:
        return Response("Sign in from your PIM first.", status=401, mimetype="text/plain")
    content, content_type = current.catalogs(pim_url).fetch_media(request.args.get("url", ""))
    response = Response(content, mimetype=content_type)
    # the same file for this browser for an hour: a products page shows many
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.post("/scopes/notify")
def notify_scopes() -> Response:
    """Tell the connected PIM that the App now needs all of AKENEO_SCOPES."""
    check_csrf()
    pim_url = current.flow().connected_pim(session)
    if pim_url:
        try:
            current.app_api(pim_url).notify_scopes(current.settings().scopes)
            flash("The PIM was told. Its users can grant the new scopes by opening the App again.")
        except (NotConnected, TokenRevoked):
            pass  # the home page says that the App was disconnected, and offers to reconnect
    return redirect(url_for("app.home"))


@bp.post("/logout")
def logout() -> Response:
    """End this browser's session for good; the stored connection stays for the next visit."""
    check_csrf()
    current.flow().sign_out(session)
    flash("You are signed out. Open the App from your PIM to come back.")
    return redirect(url_for("app.home"))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the store answers, 503 otherwise (for load balancers and HEALTHCHECK)."""
    try:
        current.store().ping()
    except Exception:
        log.exception("health check: the store does not answer")
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok"), 200


def _targets(schema: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The schema's targets for a table: (name, title, is an image)."""
    return [
        (name, str(spec.get("title") or name), spec.get("format") == "uri")
        for name, spec in schema.get("properties", {}).items()
    ]


def _setup_info() -> dict[str, Any]:
    settings = current.settings()
    return {
        "activate_url": url_for("app.activate", _external=True),
        "callback_url": url_for("app.callback", _external=True),
        "settings": settings,
        "is_https": request.is_secure,
    }
