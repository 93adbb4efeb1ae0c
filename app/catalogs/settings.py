"""The catalogs feature's settings, read from the App's environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import text
from ..errors import ConfigError

#: the environment variables this feature reads
NAMES = ("AKENEO_CATALOG_NAME",)
DEFAULT_NAME = "Flask Akeneo App"


@dataclass(frozen=True)
class CatalogSettings:
    """The name the App gives its catalog in each PIM (it finds it again by this name)."""

    name: str = DEFAULT_NAME

    @classmethod
    def from_env(cls, env: Mapping[str, Any]) -> CatalogSettings:
        """From the App's raw settings; ConfigError with a sentence when one is wrong."""
        name = text(env, "AKENEO_CATALOG_NAME") or DEFAULT_NAME
        if len(name) > 255:
            raise ConfigError(
                "AKENEO_CATALOG_NAME must be 255 characters or less (the PIM's limit)."
            )
        return cls(name)
