"""Catalogs for Apps in the local PIM, as Akeneo documents them
(https://api.akeneo.com/apps/catalogs.html). The § numbers cite this project's specification,
akeneo-catalogs.md in the shared/ folder beside the repository.

- §1 endpoints: bodies, status codes and error texts; the order of checks of §1.1 (scopes, then
  existence and ownership as one 404, then validation 422, then a disabled catalog answering
  200 with an `error` key).
- §2.3 product selection (enabled, family, categories), §3.4 mapping (schema order, empty
  values left out), §1.12 mapped products, §1.9/§1.10 search_after pagination with
  `updated_after`/`updated_before` in full ISO 8601.
- §2.6: disconnecting the App deletes its catalogs.
- §4: the configure page at /connect/apps/v1/catalogs/{id}, where the local user plays the PIM
  user: enable, choose the products, map each target.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, render_template, request

from .products import CATEGORIES, CHANNELS, FAMILIES, LOCALES, Catalog

KNOWN_META_SCHEMAS = tuple(
    f"https://api.akeneo.com/mapping/product/{version}/schema"
    for version in [f"0.0.{n}" for n in range(1, 14)]
    + ["0.1.0", "0.2.0", "0.3.0", "1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"]
)
ATOM = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# the PIM's attributes a target can be mapped to, and what each gives (§3.3)
SOURCES = {
    "name": "Name (text, per locale)",
    "description": "Description (text, per locale and channel)",
    "sku": "SKU (identifier)",
    "image": "Image (media file)",
    "price": "Price (EUR)",
    "color": "Color (simple select)",
    "weight": "Weight (kg)",
    "family": "Family",
}
LOCALIZABLE, SCOPABLE = {"name", "description"}, {"description"}
CONNECTOR_KEYS = (
    "uuid",
    "enabled",
    "family",
    "categories",
    "groups",
    "parent",
    "values",
    "associations",
    "quantified_associations",
    "created",
    "updated",
)
DISABLED = (
    "No products to synchronize. The catalog {id} has been disabled on the PIM side. Note that "
    "you can get catalogs status with the GET /api/rest/v1/catalogs endpoint."
)
NO_SCHEMA = "Impossible to map products: no product mapping schema available for this catalog."
FORBIDDEN = {
    "read_catalogs": "Access forbidden. You are not allowed to access app catalogs.",
    "write_catalogs": "Access forbidden. You are not allowed to edit app catalogs.",
    "delete_catalogs": "Access forbidden. You are not allowed to delete app catalogs.",
    "read_products": "Access forbidden. You are not allowed to access products.",
}
# §2.7: delete ⊃ write ⊃ read for catalogs, write ⊃ read for products
IMPLIED_BY = {
    "read_catalogs": {"read_catalogs", "write_catalogs", "delete_catalogs"},
    "write_catalogs": {"write_catalogs", "delete_catalogs"},
    "delete_catalogs": {"delete_catalogs"},
    "read_products": {"read_products", "write_products", "delete_products"},
}


@dataclass
class AppCatalog:
    """A catalog as the PIM stores it (§2.5)."""

    id: str
    name: str
    enabled: bool = False
    criteria: list[dict[str, Any]] = field(
        default_factory=lambda: [{"field": "enabled", "operator": "=", "value": True}]
    )
    schema: dict[str, Any] | None = None
    mapping: dict[str, dict[str, Any]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """§1.2: what the API shows of it."""
        return {"id": self.id, "name": self.name, "enabled": self.enabled}

    def targets(self) -> list[str]:
        """The schema's targets, in schema order."""
        return list((self.schema or {}).get("properties", {}))


class AppCatalogs:
    """The App's catalogs in this PIM (one App: the one registered), with a per-App limit."""

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._catalogs: dict[str, AppCatalog] = {}
        self._lock = threading.Lock()

    def all(self) -> list[AppCatalog]:
        """Every catalog, ordered by id (§1.3)."""
        with self._lock:
            return sorted(self._catalogs.values(), key=lambda c: c.id)

    def get(self, catalog_id: str) -> AppCatalog | None:
        """One catalog, or None."""
        with self._lock:
            return self._catalogs.get(catalog_id)

    def create(self, name: str) -> AppCatalog:
        """A new, disabled catalog (§1.4)."""
        catalog = AppCatalog(str(uuid.uuid4()), name)
        with self._lock:
            self._catalogs[catalog.id] = catalog
        return catalog

    def delete(self, catalog_id: str) -> None:
        """Forget one catalog."""
        with self._lock:
            self._catalogs.pop(catalog_id, None)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every catalog as plain data."""
        with self._lock:
            return [asdict(c) for c in self._catalogs.values()]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        """Take back a snapshot."""
        with self._lock:
            self._catalogs = {c["id"]: AppCatalog(**c) for c in saved}

    def delete_all(self) -> None:
        """§2.6: the App was disconnected: its catalogs go with its user."""
        with self._lock:
            self._catalogs.clear()

    def set_schema(self, catalog: AppCatalog, schema: dict[str, Any] | None) -> None:
        """§1.8: store the schema; keep the mapping of kept targets, uuid mapped to uuid."""
        with self._lock:
            catalog.schema = schema
            if schema is None:
                catalog.mapping = {}
                return
            catalog.mapping = {
                target: catalog.mapping.get(target)
                or {"source": "uuid" if target == "uuid" else None, "scope": None, "locale": None}
                for target in schema.get("properties", {})
            }


def selected(catalog: AppCatalog, product: dict[str, Any]) -> bool:
    """§2.3: does the product meet every criterion (AND)?"""
    for criterion in catalog.criteria:
        name, value = criterion.get("field"), criterion.get("value")
        if name == "enabled" and product.get("enabled") != value:
            return False
        if name == "family" and product.get("family") not in (value or []):
            return False
        if name == "categories" and not set(product.get("categories", [])) & set(value or []):
            return False
    return True


def mapped(catalog: AppCatalog, product: dict[str, Any], pim_url: str) -> dict[str, Any]:
    """§3.4: the product as the App's schema wants it; empty targets left out, schema order."""
    out: dict[str, Any] = {}
    for target in catalog.targets():
        rule = catalog.mapping.get(target) or {}
        value = _source_value(product, rule, pim_url)
        if value not in (None, "", []):
            out[target] = value
    out.setdefault("uuid", product["uuid"])
    return {k: out[k] for k in [*catalog.targets(), "uuid"] if k in out}


def _source_value(product: dict[str, Any], rule: dict[str, Any], pim_url: str) -> Any:
    source = rule.get("source")
    if source == "uuid":
        return product["uuid"]
    if source == "family":
        return product.get("family")
    if not source:
        return None
    for value in product.get("values", {}).get(source, []):
        if source in LOCALIZABLE and value.get("locale") != rule.get("locale"):
            continue
        if source in SCOPABLE and value.get("scope") != rule.get("scope"):
            continue
        data = value.get("data")
        if source == "image":
            return value.get("_links", {}).get("download", {}).get("href")
        if source == "price":
            currency = (rule.get("parameters") or {}).get("currency", "EUR")
            prices = [p for p in data or [] if p.get("currency") == currency]
            return float(prices[0]["amount"]) if prices else None
        if source == "weight":
            return float(data["amount"]) if data else None
        if source == "color":
            return str(data).title() if data else None  # the option's label (§3.3)
        return data
    return None


# -- the endpoints ---------------------------------------------------------------------------


def catalog_routes(
    catalogs: Callable[[], AppCatalogs],
    products: Callable[[], Catalog],
    granted: Callable[[], frozenset[str] | tuple[int, str]],
) -> Blueprint:
    """The catalog endpoints (§1) and the configure page (§4)."""
    bp = Blueprint("catalogs", __name__, template_folder="templates")
    base = "/api/rest/v1/catalogs"

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

    @bp.get(base)
    def list_catalogs() -> tuple[Response, int]:
        if refused := check("read_catalogs"):
            return refused
        page = request.args.get("page", 1, type=int) or 0
        limit = request.args.get("limit", 100, type=int) or 0
        if page < 1 or not 1 <= limit <= 100:
            return jsonify(code=400, message=""), 400
        everything = catalogs().all()
        chunk = everything[(page - 1) * limit : page * limit]
        url = f"{pim_url()}{base}"
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

    @bp.post(base)
    def create_catalog() -> tuple[Response, int]:
        if refused := check("write_catalogs"):
            return refused
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(code=400, message="Invalid json message received"), 400
        name = str(body.get("name") or "").strip()
        errors = _name_errors(name)
        if not errors and len(catalogs().all()) >= catalogs().limit:
            errors = [
                {"property": "", "message": f"You can create up to {catalogs().limit} catalogs"}
            ]
        if errors:
            return jsonify(code=422, message="Validation failed.", errors=errors), 422
        return jsonify(catalogs().create(name).public()), 201

    @bp.get(f"{base}/<catalog_id>")
    def get_catalog(catalog_id: str) -> tuple[Response, int]:
        catalog = check("read_catalogs") or owned(catalog_id)
        return catalog if isinstance(catalog, tuple) else (jsonify(catalog.public()), 200)

    @bp.patch(f"{base}/<catalog_id>")
    def update_catalog(catalog_id: str) -> tuple[Response, int]:
        catalog = check("write_catalogs") or owned(catalog_id)
        if isinstance(catalog, tuple):
            return catalog
        body = request.get_json(silent=True)
        name = str((body or {}).get("name") or "").strip() if isinstance(body, dict) else ""
        if errors := _name_errors(name):
            return jsonify(code=422, message="Validation failed.", errors=errors), 422
        catalog.name = name  # an App never changes `enabled` (§1.6)
        return jsonify(catalog.public()), 200

    @bp.delete(f"{base}/<catalog_id>")
    def delete_catalog(catalog_id: str) -> tuple[Response, int]:
        catalog = check("delete_catalogs") or owned(catalog_id)
        if isinstance(catalog, tuple):
            return catalog
        catalogs().delete(catalog.id)
        return Response(status=204), 204

    @bp.put(f"{base}/<catalog_id>/mapping-schemas/product")
    def put_schema(catalog_id: str) -> tuple[Response, int]:
        catalog = check("write_catalogs") or owned(catalog_id)
        if isinstance(catalog, tuple):
            return catalog
        schema = request.get_json(silent=True)
        if not isinstance(schema, dict):
            return jsonify(code=400, message="Invalid json message received"), 400
        if problem := _schema_problem(schema):
            errors = [{"property": "product_mapping_schema", "message": problem}]
            return jsonify(code=422, message="Validation failed.", errors=errors), 422
        catalogs().set_schema(catalog, schema)
        return Response(status=204), 204

    @bp.get(f"{base}/<catalog_id>/mapping-schemas/product")
    def get_schema(catalog_id: str) -> tuple[Response, int]:
        catalog = check("read_catalogs") or owned(catalog_id)
        if isinstance(catalog, tuple):
            return catalog
        if catalog.schema is None:
            message = f'Catalog "{catalog_id}" does not have a product mapping schema.'
            return jsonify(code=404, message=message), 404
        return jsonify(catalog.schema), 200

    @bp.delete(f"{base}/<catalog_id>/mapping-schemas/product")
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
        chosen = _selection(catalog, products(), query)
        items: list[Any]
        if kind == "product-uuids":
            items = [p["uuid"] for p in chosen]
        elif kind == "products":
            items = [_connector_product(p) for p in chosen]
        else:
            items = [mapped(catalog, p, pim_url()) for p in chosen]
        url = f"{pim_url()}{base}/{catalog.id}/{kind}"
        kept = {k: v for k, v in query.items() if k != "search_after" and v is not None}
        links: dict[str, Any] = {
            "self": {"href": _href(url, {**kept, "search_after": query["search_after"]})},
            "first": {"href": _href(url, kept)},
        }
        if len(chosen) >= query["limit"]:
            links["next"] = {"href": _href(url, {**kept, "search_after": chosen[-1]["uuid"]})}
        return jsonify(_links=links, _embedded={"items": items}), 200

    for kind in ("product-uuids", "products", "mapped-products"):
        bp.add_url_rule(
            f"{base}/<catalog_id>/{kind}",
            f"list_{kind}",
            lambda catalog_id, kind=kind: product_page(catalog_id, kind),
        )

    @bp.get(f"{base}/<catalog_id>/products/<product_uuid>")
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
        return jsonify(_connector_product(product)), 200

    @bp.post(f"{base}/<catalog_id>/duplicate")
    def duplicate_catalog(catalog_id: str) -> tuple[Response, int]:
        """§1.7b: a disabled copy, with the same selection, schema and mapping."""
        catalog = check("write_catalogs") or owned(catalog_id)
        if isinstance(catalog, tuple):
            return catalog
        body = request.get_json(silent=True) or {}
        name = str(body.get("name") or catalog.name).strip() if isinstance(body, dict) else ""
        if errors := _name_errors(name):
            return jsonify(code=422, message="Validation failed.", errors=errors), 422
        copy = catalogs().create(name)
        copy.criteria = [dict(c) for c in catalog.criteria]
        copy.schema, copy.mapping = catalog.schema, {k: dict(v) for k, v in catalog.mapping.items()}
        return jsonify(copy.public()), 201

    @bp.get(f"{base}/<catalog_id>/mapped-products/<product_uuid>")
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

    # -- §4: the configure page (the real PIM redirects this link to its catalog screen) ------

    @bp.get("/connect/apps/v1/catalogs/<catalog_id>")
    def configure(catalog_id: str) -> tuple[str, int] | tuple[Response, int]:
        catalog = catalogs().get(catalog_id)
        if catalog is None:
            return Response("This catalog does not exist in this PIM.", status=404), 404
        return render_template(
            "pim_catalog.html",
            catalog=catalog,
            families=FAMILIES,
            chosen_families=_chosen(catalog, "family"),
            categories=CATEGORIES,
            chosen_categories=_chosen(catalog, "categories"),
            sources=SOURCES,
            locales=LOCALES,
            channels=CHANNELS,
            enabled_only=any(c.get("field") == "enabled" for c in catalog.criteria),
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
            catalog.mapping[target] = {
                "source": source if source in SOURCES else None,
                "locale": form.get(f"locale-{target}") if source in LOCALIZABLE else None,
                "scope": form.get(f"scope-{target}") if source in SCOPABLE else None,
            }
        return redirect(f"/connect/apps/v1/catalogs/{catalog.id}?saved=1")

    return bp


def _not_found(catalog_id: str) -> tuple[Response, int]:
    return jsonify(
        code=404, message=f'Catalog "{catalog_id}" does not exist or you can\'t access it.'
    ), 404


def _chosen(catalog: AppCatalog, field_name: str) -> list[str]:
    """The values of the catalog's `IN` criterion on `field_name` (none: every value)."""
    return next((c["value"] for c in catalog.criteria if c.get("field") == field_name), [])


def _not_in_selection(catalog_id: str, product_uuid: str) -> tuple[Response, int]:
    return jsonify(
        code=404,
        message=f'Either catalog "{catalog_id}" does not exist or you can\'t access it, or '
        f'product "{product_uuid}" does not exist or you do not have permission to access it.',
    ), 404


def _name_errors(name: str) -> list[dict[str, str]]:
    if not name:
        return [{"property": "name", "message": "This value should not be blank."}]
    if len(name) > 255:
        return [
            {
                "property": "name",
                "message": "This value is too long. It should have 255 characters or less.",
            }
        ]
    return []


def _schema_problem(schema: dict[str, Any]) -> str | None:
    """§3.5: the validator's messages; a light check of the meta-schema's rules (§3.1)."""
    reference = schema.get("$schema")
    if not isinstance(reference, str):
        return "You must provide a $schema reference."
    if reference not in KNOWN_META_SCHEMAS:
        return "You must provide a valid $schema reference."
    properties = schema.get("properties")
    if (
        schema.get("type") != "object"
        or not isinstance(properties, dict)
        or "uuid" not in properties
        or len(properties) > 600
        or any(
            not isinstance(p, dict)
            or p.get("type") not in ("string", "number", "boolean", "array", "object")
            for p in properties.values()
        )
    ):
        return "You must provide a valid schema."
    return None


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


def _selection(
    catalog: AppCatalog, products: Catalog, query: dict[str, Any]
) -> list[dict[str, Any]]:
    """The selected products after the cursor, by uuid, at most `limit` (§1.9)."""
    chosen = []
    after, before = query.pop("_after"), query.pop("_before")
    for _, product_uuid in products.keys("uuid"):
        if query["search_after"] and product_uuid <= query["search_after"]:
            continue
        product = products.get(product_uuid)
        if product is None or not selected(catalog, product):
            continue
        updated = datetime.fromisoformat(product["updated"])
        if after and before:
            if not after <= updated <= before:
                continue
        elif (after and not updated > after) or (before and not updated < before):
            continue
        chosen.append(product)
        if len(chosen) == query["limit"]:
            break
    return chosen


def _connector_product(product: dict[str, Any]) -> dict[str, Any]:
    """§1.10: exactly these keys."""
    keys = ("uuid", "enabled", "family", "categories", "groups", "parent", "values")
    return {
        k: product.get(k)
        for k in (*keys, "associations", "quantified_associations", "created", "updated")
    }


def _href(url: str, params: dict[str, Any]) -> str:
    query = {k: v for k, v in params.items() if v is not None}
    return f"{url}?{urlencode(query)}" if query else url
