"""The local PIM's catalog endpoints (§1 of akeneo-catalogs.md, in the shared/ folder beside the
repository): bodies, status codes and error texts; the order of checks of §1.1 (scopes, then
existence and ownership as one 404, then validation 422, then a disabled catalog answering 200
with an `error` key); §1.9/§1.10/§1.12 search_after pages with `updated_after`/`updated_before`
in full ISO 8601.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from ..products import Catalog
from .model import (
    ATOM,
    DISABLED,
    FORBIDDEN,
    IMPLIED_BY,
    NO_SCHEMA,
    UUID,
    AppCatalog,
    AppCatalogs,
    connector_product,
    href,
    mapped,
    name_errors,
    schema_problem,
    selected,
    selection,
)

bp = Blueprint("catalogs_api", __name__)
BASE = "/api/rest/v1/catalogs"


def catalogs() -> AppCatalogs:
    """The App's catalogs in this PIM."""
    return current_app.extensions["devpim_catalogs"]  # type: ignore[no-any-return]


def products() -> Catalog:
    """The PIM's products."""
    return current_app.extensions["devpim_catalog"]  # type: ignore[no-any-return]


def granted() -> frozenset[str] | tuple[int, str]:
    """The scopes of the request's bearer token, or the 401 to answer."""
    state = current_app.extensions["devpim"]
    return state.check_bearer(request.headers.get("Authorization"))  # type: ignore[no-any-return]


def check(*scopes: str) -> tuple[Response, int] | None:
    """401, then 403 for the first scope missing, in the order given (§1.1)."""
    token_scopes = granted()
    if isinstance(token_scopes, tuple):
        return jsonify(code=token_scopes[0], message=token_scopes[1]), token_scopes[0]
    for scope in scopes:
        if not IMPLIED_BY[scope] & token_scopes:
            return jsonify(code=403, message=FORBIDDEN[scope]), 403
    return None


def owned(catalog_id: str) -> AppCatalog | tuple[Response, int]:
    catalog = catalogs().get(catalog_id)
    if catalog is None:
        return _not_found(catalog_id)
    return catalog


def pim_url() -> str:
    return products().pim_url


@bp.get(BASE)
def list_catalogs() -> tuple[Response, int]:
    if refused := check("read_catalogs"):
        return refused
    page = request.args.get("page", 1, type=int) or 0
    limit = request.args.get("limit", 100, type=int) or 0
    if page < 1 or not 1 <= limit <= 100:
        return jsonify(code=400, message=""), 400
    everything = catalogs().all()
    chunk = everything[(page - 1) * limit : page * limit]
    url = f"{pim_url()}{BASE}"
    links: dict[str, Any] = {
        "self": {"href": f"{url}?page={page}&limit={limit}"},
        "first": {"href": f"{url}?page=1&limit={limit}"},
    }
    if page > 1:
        links["previous"] = {"href": f"{url}?page={page - 1}&limit={limit}"}
    if len(chunk) == limit:
        links["next"] = {"href": f"{url}?page={page + 1}&limit={limit}"}
    items = [{"_links": {"self": {"href": f"{url}/{c.id}"}}, **c.public()} for c in chunk]
    return jsonify(_links=links, current_page=page, _embedded={"items": items}), 200


@bp.post(BASE)
def create_catalog() -> tuple[Response, int]:
    if refused := check("write_catalogs"):
        return refused
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(code=400, message="Invalid json message received"), 400
    name = str(body.get("name") or "").strip()
    errors = name_errors(name)
    if not errors and len(catalogs().all()) >= catalogs().limit:
        errors = [{"property": "", "message": f"You can create up to {catalogs().limit} catalogs"}]
    if errors:
        return jsonify(code=422, message="Validation failed.", errors=errors), 422
    return jsonify(catalogs().create(name).public()), 201


@bp.get(f"{BASE}/<catalog_id>")
def get_catalog(catalog_id: str) -> tuple[Response, int]:
    catalog = check("read_catalogs") or owned(catalog_id)
    return catalog if isinstance(catalog, tuple) else (jsonify(catalog.public()), 200)


@bp.patch(f"{BASE}/<catalog_id>")
def update_catalog(catalog_id: str) -> tuple[Response, int]:
    catalog = check("write_catalogs") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    body = request.get_json(silent=True)
    name = str((body or {}).get("name") or "").strip() if isinstance(body, dict) else ""
    if errors := name_errors(name):
        return jsonify(code=422, message="Validation failed.", errors=errors), 422
    catalog.name = name  # an App never changes `enabled` (§1.6)
    return jsonify(catalog.public()), 200


@bp.delete(f"{BASE}/<catalog_id>")
def delete_catalog(catalog_id: str) -> tuple[Response, int]:
    catalog = check("delete_catalogs") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    catalogs().delete(catalog.id)
    return Response(status=204), 204


@bp.put(f"{BASE}/<catalog_id>/mapping-schemas/product")
def put_schema(catalog_id: str) -> tuple[Response, int]:
    catalog = check("write_catalogs") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    schema = request.get_json(silent=True)
    if not isinstance(schema, dict):
        return jsonify(code=400, message="Invalid json message received"), 400
    if problem := schema_problem(schema):
        errors = [{"property": "product_mapping_schema", "message": problem}]
        return jsonify(code=422, message="Validation failed.", errors=errors), 422
    catalogs().set_schema(catalog, schema)
    return Response(status=204), 204


@bp.get(f"{BASE}/<catalog_id>/mapping-schemas/product")
def get_schema(catalog_id: str) -> tuple[Response, int]:
    catalog = check("read_catalogs") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    if catalog.schema is None:
        message = f'Catalog "{catalog_id}" does not have a product mapping schema.'
        return jsonify(code=404, message=message), 404
    return jsonify(catalog.schema), 200


@bp.delete(f"{BASE}/<catalog_id>/mapping-schemas/product")
def delete_schema(catalog_id: str) -> tuple[Response, int]:
    catalog = check("write_catalogs") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    catalogs().set_schema(catalog, None)
    return Response(status=204), 204


def product_page(catalog_id: str, kind: str) -> tuple[Response, int]:
    """§1.9, §1.10, §1.12: checks in order, then one search_after page."""
    catalog = check("read_catalogs", "read_products") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    largest = 100 if kind == "mapped-products" else 1000
    query, errors = _product_query(largest)
    if errors:
        return jsonify(code=422, message="Validation failed.", errors=errors), 422
    if not catalog.enabled:
        return jsonify(error=DISABLED.format(id=catalog.id)), 200
    if kind == "mapped-products" and catalog.schema is None:
        return jsonify(error=NO_SCHEMA), 200
    chosen = selection(catalog, products(), query)
    items: list[Any]
    if kind == "product-uuids":  # ids only: no product is loaded
        items = [p["uuid"] for p in chosen]
    else:
        loaded = [p for p in (products().get(f["uuid"]) for f in chosen) if p]
        if kind == "products":
            items = [connector_product(p) for p in loaded]
        else:
            items = [mapped(catalog, p, pim_url()) for p in loaded]
    url = f"{pim_url()}{BASE}/{catalog.id}/{kind}"
    kept = {k: v for k, v in query.items() if k != "search_after" and v is not None}
    links: dict[str, Any] = {
        "self": {"href": href(url, {**kept, "search_after": query["search_after"]})},
        "first": {"href": href(url, kept)},
    }
    if len(chosen) >= query["limit"]:
        links["next"] = {"href": href(url, {**kept, "search_after": chosen[-1]["uuid"]})}
    return jsonify(_links=links, _embedded={"items": items}), 200


for _kind in ("product-uuids", "products", "mapped-products"):
    bp.add_url_rule(
        f"{BASE}/<catalog_id>/{_kind}",
        f"list_{_kind}",
        lambda catalog_id, kind=_kind: product_page(catalog_id, kind),
    )


@bp.get(f"{BASE}/<catalog_id>/products/<product_uuid>")
def catalog_product(catalog_id: str, product_uuid: str) -> tuple[Response, int]:
    """§1.11: one product of the selection."""
    catalog = check("read_catalogs", "read_products") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    if not UUID.match(product_uuid):
        errors = [{"property": "product_uuid", "message": "This is not a valid UUID."}]
        return jsonify(code=422, message="Validation failed.", errors=errors), 422
    if not catalog.enabled:
        message = (
            f'No products to synchronize. The catalog "{catalog.id}" has been disabled on PIM '
            "side. Note that you can get catalogs status with the GET /api/rest/v1/catalogs "
            "endpoint."
        )
        return jsonify(error=message), 200
    product = products().get(product_uuid)
    if product is None or not selected(catalog, product):
        return _not_in_selection(catalog_id, product_uuid)
    return jsonify(connector_product(product)), 200


@bp.post(f"{BASE}/<catalog_id>/duplicate")
def duplicate_catalog(catalog_id: str) -> tuple[Response, int]:
    """§1.7b: a disabled copy, with the same selection, schema and mapping."""
    catalog = check("write_catalogs") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    body = request.get_json(silent=True) or {}
    name = str(body.get("name") or catalog.name).strip() if isinstance(body, dict) else ""
    if errors := name_errors(name):
        return jsonify(code=422, message="Validation failed.", errors=errors), 422
    copy = catalogs().create(name)
    copy.criteria = [dict(c) for c in catalog.criteria]
    copy.schema, copy.mapping = catalog.schema, {k: dict(v) for k, v in catalog.mapping.items()}
    return jsonify(copy.public()), 201


@bp.get(f"{BASE}/<catalog_id>/mapped-products/<product_uuid>")
def mapped_product(catalog_id: str, product_uuid: str) -> tuple[Response, int]:
    catalog = check("read_catalogs", "read_products") or owned(catalog_id)
    if isinstance(catalog, tuple):
        return catalog
    if not catalog.enabled:
        message = DISABLED.format(id=catalog.id).replace("No products", "No product", 1)
        return jsonify(error=message), 200
    if catalog.schema is None:
        return jsonify(error=NO_SCHEMA.replace("products", "the product", 1)), 200
    product = products().get(product_uuid)
    if product is None or not selected(catalog, product):
        return _not_in_selection(catalog_id, product_uuid)
    return jsonify(mapped(catalog, product, pim_url())), 200


def _not_found(catalog_id: str) -> tuple[Response, int]:
    return jsonify(
        code=404, message=f'Catalog "{catalog_id}" does not exist or you can\'t access it.'
    ), 404


def _not_in_selection(catalog_id: str, product_uuid: str) -> tuple[Response, int]:
    return jsonify(
        code=404,
        message=f'Either catalog "{catalog_id}" does not exist or you can\'t access it, or '
        f'product "{product_uuid}" does not exist or you do not have permission to access it.',
    ), 404


def _product_query(largest: int) -> tuple[dict[str, Any], list[dict[str, str]]]:
    args = request.args
    errors = []
    limit = args.get("limit", 100, type=int) or 0
    if not 1 <= limit <= largest:
        errors.append(
            {"property": "limit", "message": f"This value should be between 1 and {largest}."}
        )
    search_after = args.get("search_after")
    if search_after is not None and not UUID.match(search_after):
        errors.append({"property": "search_after", "message": "This is not a valid UUID."})
    dates: dict[str, datetime | None] = {}
    for name in ("updated_after", "updated_before"):
        raw = args.get(name)
        dates[name] = None
        if raw is not None:
            if not ATOM.match(raw):
                errors.append({"property": name, "message": "ISO 8601 format is required."})
            else:
                dates[name] = datetime.fromisoformat(raw)
    return {
        "limit": limit,
        "search_after": search_after,
        "updated_after": args.get("updated_after"),
        "updated_before": args.get("updated_before"),
        "_after": dates["updated_after"],
        "_before": dates["updated_before"],
    }, errors
