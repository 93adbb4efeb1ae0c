"""The local PIM's catalogs as a test reads and changes them (what a PIM user does)."""

from __future__ import annotations

from typing import Any

from devpim.catalogs import AppCatalog, AppCatalogs
from tests.pims import FakePim


def catalogs_of(pim: FakePim) -> AppCatalogs:
    return pim.app.extensions["devpim_catalogs"]  # type: ignore[no-any-return]


def the_catalog(pim: FakePim) -> AppCatalog:
    (catalog,) = catalogs_of(pim).all()
    return catalog


def configure(pim: FakePim, **form: Any) -> None:
    """The PIM user's Save on the catalog's configure page."""
    catalog = the_catalog(pim)
    answer = pim.app.test_client().post(f"/connect/apps/v1/catalogs/{catalog.id}", data=form)
    assert answer.status_code == 302


def enable_with_titles(pim: FakePim, **extra: Any) -> None:
    configure(
        pim,
        catalog_enabled="on",
        enabled_only="on",
        **{"source-title": "name", "locale-title": "en_US", "source-main_image": "image"},
        **extra,
    )
