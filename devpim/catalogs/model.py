"""The local PIM's Catalogs for Apps: the catalogs an App owns, their selection and mapping.

What §2 and §3 of akeneo-catalogs.md (in the shared/ folder beside the repository) say a PIM
stores and computes: §2.3 product selection (enabled, family, categories), §3.4 mapping (schema
order, empty values left out), the checks of names and schemas (§3.5).
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from ..products import Catalog

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
    "price": "Price (in the currency chosen)",
    "color": "Color (simple select)",
    "weight": "Weight (kg)",
    "family": "Family",
}
LOCALIZABLE, SCOPABLE = {"name", "description"}, {"description"}
CURRENCIES = ("EUR", "USD")
# which sources each kind of target takes (§3.3: the CE's TargetTypeConverter)
COMPATIBLE = {
    "string": ("name", "description", "sku", "color", "family"),
    "uri": ("image",),
    "number": ("price", "weight"),
    "price": ("price",),
}


def target_kind(spec: dict[str, Any]) -> str:
    """What a schema target holds: string, uri, number, price (an {amount, currency} object)."""
    if spec.get("type") == "string" and spec.get("format") == "uri":
        return "uri"
    if spec.get("type") == "object" and set(spec.get("properties", {})) == {"amount", "currency"}:
        return "price"
    return str(spec.get("type"))


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
    properties = (catalog.schema or {}).get("properties", {})
    for target in catalog.targets():
        rule = catalog.mapping.get(target) or {}
        value = _source_value(product, rule, pim_url)
        if isinstance(value, dict) and target_kind(properties.get(target, {})) != "price":
            value = value["amount"]  # a number target takes the amount in the chosen currency
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
            return {"amount": float(prices[0]["amount"]), "currency": currency} if prices else None
        if source == "weight":
            return float(data["amount"]) if data else None
        if source == "color":
            return str(data).title() if data else None  # the option's label (§3.3)
        return data
    return None


def chosen(catalog: AppCatalog, field_name: str) -> list[str]:
    """The values of the catalog's `IN` criterion on `field_name` (none: every value)."""
    return next((c["value"] for c in catalog.criteria if c.get("field") == field_name), [])


def name_errors(name: str) -> list[dict[str, str]]:
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


def schema_problem(schema: dict[str, Any]) -> str | None:
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


def selection(
    catalog: AppCatalog, products: Catalog, query: dict[str, Any]
) -> list[dict[str, Any]]:
    """The selected products' facts (no values) after the cursor, by uuid, at most `limit`
    (§1.9): what the search engine answers, before any product is loaded."""
    chosen = []
    after, before = query.pop("_after"), query.pop("_before")
    keys = products.keys("uuid")
    start = products.after(keys, query["search_after"]) if query["search_after"] else 0
    for _, product_uuid in keys[start:]:
        product = products.facts(product_uuid)
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


def connector_product(product: dict[str, Any]) -> dict[str, Any]:
    """§1.10: exactly these keys."""
    keys = ("uuid", "enabled", "family", "categories", "groups", "parent", "values")
    return {
        k: product.get(k)
        for k in (*keys, "associations", "quantified_associations", "created", "updated")
    }


def href(url: str, params: dict[str, Any]) -> str:
    query = {k: v for k, v in params.items() if v is not None}
    return f"{url}?{urlencode(query)}" if query else url
