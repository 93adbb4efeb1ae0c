"""Placing the App's extensions in a PIM, and taking them away: find by name, create what is
missing, PATCH what changed (`PATCH` carries a new secret only when the App lost the old one)."""

from __future__ import annotations

import logging
from typing import Any

from ..api import PimApi
from ..errors import AppError, PimHttpError
from .definitions import Definition, definitions
from .store import Extension, ExtensionStore

log = logging.getLogger(__name__)

EXTENSIONS_PATH = "/api/rest/v1/ui-extensions"


def extension_url(base: str, extension: Extension, definition: Definition) -> str:
    return f"{base}/extensions/{extension.key}/{definition.route}"


def register(store: ExtensionStore, api: PimApi, base: str, app_name: str) -> int:
    """Make sure the PIM shows the App's extensions, pointing at `base`; how many were created
    or changed. AppError (a PimHttpError 403 without `manage_extensions`) when the PIM refused."""
    pim_url = api.pim_url
    in_pim = {e.get("name"): e for e in _listed(api.get(EXTENSIONS_PATH))}
    known = store.of_pim(pim_url)
    changed = 0
    for definition in definitions(app_name):
        found = in_pim.get(definition.name)
        mine = known.get(definition.name)
        fresh = mine is None
        if mine is None:  # never made, or its secret can no longer be read: a new one
            mine = store.new(pim_url, definition.name)
        url = extension_url(base, mine, definition)
        version = definition.version(url)
        if found is None:
            created = api.send("POST", EXTENSIONS_PATH, json=definition.body(url, mine.secret))
            uuid = _uuid_of(created.json("extension") if created.body else None, created.location)
        else:
            uuid = str(found.get("uuid") or found.get("id") or mine.uuid or "")
            if found.get("version") == version and not fresh:
                store.registered(pim_url, definition.name, uuid, version)
                continue
            secret = mine.secret if fresh else None
            api.send("PATCH", f"{EXTENSIONS_PATH}/{uuid}", json=definition.body(url, secret))
        store.registered(pim_url, definition.name, uuid, version)
        changed += 1
    log.info("ui extensions registered pim=%s changed=%d", pim_url, changed)
    return changed


def unregister(store: ExtensionStore, pim_url: str, api: PimApi | None) -> None:
    """Delete the App's extensions in the PIM (when the token still works), then the rows."""
    if api is not None:
        for extension in store.of_pim(pim_url).values():
            if not extension.uuid:
                continue
            try:
                api.send("DELETE", f"{EXTENSIONS_PATH}/{extension.uuid}")
            except PimHttpError as error:
                if error.pim_status != 404:
                    log.warning("extension not deleted pim=%s: %s", api.pim_url, error.message)
            except AppError as error:
                log.warning("extension not deleted pim=%s: %s", api.pim_url, error.message)
    store.forget(pim_url)


def _listed(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict):
        body = body.get("items") or (body.get("_embedded") or {}).get("items")
    return [item for item in body or [] if isinstance(item, dict)]


def _uuid_of(body: Any, location: str | None) -> str:
    if isinstance(body, dict) and isinstance(body.get("uuid"), str):
        return str(body["uuid"])
    return (location or "").rstrip("/").rsplit("/", 1)[-1]
