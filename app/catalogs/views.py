"""The catalogs feature's pages: its panel on the connected page, /products and /media."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from .. import current as core
from ..errors import TokenRevoked
from ..store import Connection
from . import current
from .catalog import CatalogView

bp = Blueprint("catalogs", __name__, template_folder="templates")

PREVIEW_SIZE = 5
PRODUCTS_PER_PAGE = 25


def panel_view(pim_url: str) -> CatalogView:
    """The catalog as the connected page shows it, read once per request (other features'
    panels ask for it too)."""
    key = f"catalogs.view {pim_url}"
    if key not in request.environ:
        request.environ[key] = current.catalog(pim_url).view(limit=PREVIEW_SIZE)
    return request.environ[key]  # type: ignore[no-any-return]


def panel(connection: Connection) -> dict[str, Any]:
    """The connected page's catalog panel: its state, Configure in your PIM, a preview."""
    return {"view": panel_view(connection.pim_url)}


@bp.get("/products")
def products() -> Response | str:
    """The catalog's mapped products, a page at a time (`after`: the last uuid shown)."""
    pim_url = core.flow().connected_pim(session)
    if not pim_url:
        return redirect(url_for("app.home"))
    catalog = current.catalog(pim_url)
    after = request.args.get("after") or None
    connection = core.store().connection(pim_url)
    if connection is None or connection.revoked:
        return redirect(url_for("app.home"))  # the home page says so, and offers to reconnect
    try:
        view = catalog.view(limit=PRODUCTS_PER_PAGE, after=after)
    except TokenRevoked:
        return redirect(url_for("app.home"))
    return render_template(
        "catalogs/products.html", view=view, targets=_targets(catalog.schema), after=after
    )


@bp.get("/media")
def media() -> Response:
    """An image target of a mapped product, fetched with this browser's PIM's App token."""
    pim_url = core.flow().connected_pim(session)
    if not pim_url:
        return Response("Sign in from your PIM first.", status=401, mimetype="text/plain")
    content, content_type = current.catalog(pim_url).fetch_media(request.args.get("url", ""))
    response = Response(content, mimetype=content_type)
    # the same file for this browser for an hour (a products page shows many); never for
    # another session's cookie (a shared cache, or the browser after sign-out)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Vary"] = "Cookie"
    return response


def _targets(schema: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The schema's targets for a table: (name, title, is an image)."""
    return [
        (name, str(spec.get("title") or name), spec.get("format") == "uri")
        for name, spec in schema.get("properties", {}).items()
    ]
