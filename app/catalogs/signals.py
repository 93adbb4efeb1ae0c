"""The catalogs feature's signals, for the features that build on it (the sync):

- `catalog_found(app, pim_url=…, catalog=…)`: after a connection, the App's catalog is found
  or created (`catalog` a CatalogInfo: enabled or not);
- `schema_changed(app, pim_url=…)`: the App pushed a changed product schema to that PIM.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()
catalog_found = _signals.signal("catalog-found")
schema_changed = _signals.signal("schema-changed")
