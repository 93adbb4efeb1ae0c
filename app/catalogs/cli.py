"""The catalogs feature's commands: `flask --app app akeneo catalogs|products --pim URL`."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ..cli import echo, one_line, origin_of
from . import current
from .catalog import AppCatalog, explain_unusable


@click.command("catalogs")
@with_appcontext
@click.option("--pim", "pim_url", required=True, help="A connected PIM.")
def catalogs(pim_url: str) -> None:
    """List the App's catalogs in a PIM: id, enabled or not, name."""
    origin = origin_of(pim_url)
    found = one_line(lambda: current.catalog(origin).all())
    if not found:
        echo(f"The App has no catalog in {origin} yet (connecting makes one).")
    for catalog in found:
        state = "enabled " if catalog.enabled else "disabled"
        echo(f"{catalog.id}  {state}  {catalog.name}")


@click.command("products")
@with_appcontext
@click.option("--pim", "pim_url", required=True, help="A connected PIM.")
@click.option("--limit", default=10, show_default=True, help="How many products (1 to 100).")
@click.option("--all", "every_page", is_flag=True, help="Every product of the catalog.")
def products(pim_url: str, limit: int, every_page: bool) -> None:
    """Print the catalog's mapped products (read from the PIM), one JSON line each."""
    if not 1 <= limit <= 100:
        raise click.ClickException("--limit is a number from 1 to 100.")
    origin = origin_of(pim_url)
    one_line(lambda: _print_mapped(current.catalog(origin), limit, every_page))


def _print_mapped(catalog: AppCatalog, limit: int, every_page: bool) -> None:
    catalog_id = catalog.store.catalog_id(catalog.pim_url) or catalog.ensure().id
    after: str | None = None
    while True:
        page = catalog.mapped_products(catalog_id, limit=limit, after=after)
        if page.unusable:
            raise click.ClickException(explain_unusable(page.unusable))
        for product in page.products:
            echo(json.dumps(product, ensure_ascii=False))
        if not every_page or not page.next_cursor:
            return
        after = page.next_cursor
