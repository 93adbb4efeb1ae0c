"""The local PIM's configure page for a catalog (§4 of akeneo-catalogs.md): where the local
user plays the PIM user: enable the catalog, choose its products, map each target. A real PIM
redirects this link to its own catalog screen.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request

from ..products import CATEGORIES, CHANNELS, FAMILIES, LOCALES
from .api import catalogs
from .model import COMPATIBLE, CURRENCIES, LOCALIZABLE, SCOPABLE, SOURCES, chosen, target_kind

bp = Blueprint("catalogs_configure", __name__)


@bp.get("/connect/apps/v1/catalogs/<catalog_id>")
def configure(catalog_id: str) -> tuple[str, int] | tuple[Response, int]:
    catalog = catalogs().get(catalog_id)
    if catalog is None:
        return Response("This catalog does not exist in this PIM.", status=404), 404
    return render_template(
        "pim_catalog.html",
        catalog=catalog,
        families=FAMILIES,
        chosen_families=chosen(catalog, "family"),
        categories=CATEGORIES,
        chosen_categories=chosen(catalog, "categories"),
        sources=SOURCES,
        compatible=COMPATIBLE,
        kinds={t: target_kind(p) for t, p in (catalog.schema or {}).get("properties", {}).items()},
        currencies=CURRENCIES,
        locales=LOCALES,
        channels=CHANNELS,
        enabled_only=any(c.get("field") == "enabled" for c in catalog.criteria),
        # the App's connected page: where its user goes back after Save
        app_home=current_app.extensions["devpim"].app.activate_url.rsplit("/activate", 1)[0] + "/",
    ), 200


@bp.post("/connect/apps/v1/catalogs/<catalog_id>")
def save_configuration(catalog_id: str) -> Any:
    catalog = catalogs().get(catalog_id)
    if catalog is None:
        return Response("This catalog does not exist in this PIM.", status=404), 404
    form = request.form
    criteria: list[dict[str, Any]] = []
    if form.get("enabled_only"):
        criteria.append({"field": "enabled", "operator": "=", "value": True})
    if chosen := [f for f in form.getlist("family") if f in FAMILIES]:
        criteria.append({"field": "family", "operator": "IN", "value": chosen})
    if chosen := [c for c in form.getlist("category") if c in CATEGORIES]:
        criteria.append({"field": "categories", "operator": "IN", "value": chosen})
    catalog.criteria = criteria
    catalog.enabled = form.get("catalog_enabled") == "on"
    for target in catalog.targets():
        if target == "uuid":
            continue
        source = form.get(f"source-{target}") or None
        kind = target_kind((catalog.schema or {}).get("properties", {}).get(target, {}))
        currency = form.get(f"currency-{target}")
        catalog.mapping[target] = {
            "source": source if source in COMPATIBLE.get(kind, ()) else None,
            "locale": form.get(f"locale-{target}") if source in LOCALIZABLE else None,
            "scope": form.get(f"scope-{target}") if source in SCOPABLE else None,
            "parameters": {"currency": currency if currency in CURRENCIES else "EUR"}
            if source == "price"
            else None,
        }
    return redirect(f"/connect/apps/v1/catalogs/{catalog.id}?saved=1")
