"""The catalogs feature's pages: its panel on the connected page, the products, one product,
and their images."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from .. import current as core
from ..errors import TokenRevoked
from ..store import Connection
from . import current
from .catalog import CatalogView, PageQuery
from .media import fetch_media

bp = Blueprint("catalogs", __name__, template_folder="templates")

PREVIEW_SIZE = 5
PRODUCTS_PER_PAGE = 25
MAX_SEARCH = 100  # characters of a search


def panel_view(pim_url: str) -> CatalogView:
    """The catalog as the connected page shows it, read once per request (other features'
    panels ask for it too)."""
    key = f"catalogs.view {pim_url}"
    if key not in request.environ:
        catalog = current.catalog(pim_url)
        request.environ[key] = catalog.view(PageQuery(PREVIEW_SIZE), check_catalog=True)
    return request.environ[key]  # type: ignore[no-any-return]


def panel(connection: Connection) -> dict[str, Any]:
    """The connected page's catalog panel: its state, Configure in your PIM, a preview."""
    return {"view": panel_view(connection.pim_url), "targets": targets(current.schema())}


@bp.app_template_filter("product_value")
def product_value(value: Any) -> str:
    """A mapped value as a person reads it: a price with its currency, a list as a list."""
    if isinstance(value, dict) and {"amount", "currency"} <= set(value):
        amount = value["amount"]
        number = f"{amount:,.2f}" if isinstance(amount, int | float) else str(amount)
        return f"{number} {value['currency']}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(product_value(item) for item in value)
    return "" if value is None else str(value)


@bp.get("/products")
def products() -> Response | str:
    """The catalog's mapped products, a page at a time, searchable once the App has a copy."""
    pim_url = _signed_in_pim()
    if pim_url is None:
        return redirect(url_for("app.home"))
    search = (request.args.get("q") or "").strip()[:MAX_SEARCH] or None
    query = PageQuery(
        PRODUCTS_PER_PAGE,
        after=request.args.get("after") or None,
        before=request.args.get("before") or None,
        search=search,
    )
    try:
        view = current.catalog(pim_url).view(query)
    except TokenRevoked:
        return redirect(url_for("app.home"))
    return render_template(
        "catalogs/products.html", view=view, targets=targets(current.schema()), query=query
    )


@bp.get("/products/<uuid>")
def product(uuid: str) -> Response | str | tuple[str, int]:
    """One product: every mapped value, its image large, when it was read, a link to the PIM."""
    pim_url = _signed_in_pim()
    if pim_url is None:
        return redirect(url_for("app.home"))
    if len(uuid) > 36:
        abort(404)
    try:
        found = current.catalog(pim_url).product(uuid)
    except TokenRevoked:
        return redirect(url_for("app.home"))
    page = render_template(
        "catalogs/product.html",
        found=found,
        targets=targets(current.schema()),
        pim_link=f"{pim_url}/#/enrich/product/{uuid}",
    )
    return (page, 200) if found.product else (page, 404)


@bp.get("/media")
def media() -> Response:
    """An image target of a mapped product, fetched with this browser's PIM's App token."""
    pim_url = core.flow().connected_pim(session)
    if not pim_url:
        return Response("Sign in from your PIM first.", status=401, mimetype="text/plain")
    content, content_type = fetch_media(core.app_api(pim_url), request.args.get("url", ""))
    response = Response(content, mimetype=content_type)
    # the same file for this browser for an hour (a products page shows many); never for
    # another session's cookie (a shared cache, or the browser after sign-out)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Vary"] = "Cookie"
    return response


def targets(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The schema's targets but the uuid, for a table: (name, title, kind: image, long, value)."""
    found = []
    for name, spec in schema.get("properties", {}).items():
        if name == "uuid":
            continue
        kind = "value"
        if spec.get("format") == "uri":
            kind = "image"
        elif spec.get("type") == "string" and name not in ("title", "sku", "color"):
            kind = "long"  # shown whole on the product's page
        found.append((name, str(spec.get("title") or name), kind))
    return sorted(found, key=lambda target: target[2] != "image")  # the image first


def _signed_in_pim() -> str | None:
    """The PIM of this browser's session; None when there is none, or when the App was
    disconnected there (the home page says so, and offers to reconnect)."""
    pim_url = core.flow().connected_pim(session)
    return pim_url if pim_url and core.store().is_revoked(pim_url) is False else None
