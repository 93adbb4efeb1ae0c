"""The App's own UI extensions: what it places in every PIM it is connected to.

An extension's `version` is a hash of what the PIM is told (type, position, label, URL): a
changed definition, or a new public address, makes the next connection PATCH it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

ACTION = "action"
IFRAME = "iframe"
GRID = "pim.product-grid.action-bar"
HEADER = "pim.product.header"
TAB = "pim.product.tab"


@dataclass(frozen=True)
class Definition:
    name: str  # how the App finds it again in the PIM (its own extensions only)
    type: str
    position: str
    route: str  # `action` or `tab`: /extensions/<key>/<route>
    label: str

    def body(self, url: str, secret: str | None) -> dict[str, object]:
        """What the PIM's `ui-extensions` endpoint is sent (the secret only when it changes)."""
        configuration: dict[str, object] = {
            "url": url,
            "default_label": self.label,
            "labels": {"en_US": self.label},
        }
        if secret:
            configuration["secret"] = secret
        return {
            "name": self.name,
            "version": self.version(url),
            "type": self.type,
            "position": self.position,
            "configuration": configuration,
        }

    def version(self, url: str) -> str:
        described = json.dumps([self.type, self.position, self.label, url])
        return "v-" + hashlib.sha256(described.encode()).hexdigest()[:12]


def definitions(app_name: str) -> tuple[Definition, ...]:
    """The grid action, the product page's action, and the product tab."""
    sync_label = f"Sync with {app_name}"[:100]
    return (
        Definition("flask_app_sync_selection", ACTION, GRID, "action", sync_label),
        Definition("flask_app_sync_product", ACTION, HEADER, "action", sync_label),
        Definition("flask_app_product_tab", IFRAME, TAB, "tab", app_name[:100]),
    )


def names_served_by(route: str) -> frozenset[str]:
    """The extensions whose URL ends in `route` (their names do not depend on the App's name)."""
    return frozenset(d.name for d in definitions("") if d.route == route)
