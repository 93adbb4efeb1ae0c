"""Catalogs for Apps in the local PIM, as Akeneo documents them
(https://api.akeneo.com/apps/catalogs.html); the § numbers cite this project's specification,
akeneo-catalogs.md in the shared/ folder beside the repository.

- `model.py`: the catalogs an App owns (§2.5), their selection (§2.3) and mapping (§3.4);
- `api.py`: the endpoints (§1), with §2.6 (disconnecting the App deletes its catalogs) in the PIM;
- `configure.py`: the configure page (§4).
"""

from __future__ import annotations

from .api import bp as api_bp
from .configure import bp as configure_bp
from .model import AppCatalog, AppCatalogs, mapped, selected

__all__ = ["AppCatalog", "AppCatalogs", "api_bp", "configure_bp", "mapped", "selected"]
