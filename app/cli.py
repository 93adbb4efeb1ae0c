"""`flask --app app akeneo …`: look after the stored connections from a shell or a script.

Errors end with a one-line reason on stderr and exit code 1: no traceback, never a token.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import AppGroup

from . import current
from .api import PimApi
from .catalogs import Catalogs, explain_unusable
from .errors import AppError
from .pim_url import PimUrlPolicy, normalise
from .sync import describe
from .sync_store import FINISHED, QUEUED
from .tasks import start_sync
from .tokens import AppToken, ConnectionToken, StaticToken, TokenSource

akeneo = AppGroup("akeneo", help="The App's connections to Akeneo PIMs.")
T = TypeVar("T")

# C0 (but newline and tab), DEL and C1: a PIM's text could otherwise move the cursor, retitle the
# terminal or hide lines (\x1b[…, \x9b…)
_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """`text` with every terminal control character shown as \\xNN."""
    return _TERMINAL_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def echo(text: str) -> None:
    """Print a line that may hold a PIM's words: never a control character."""
    click.echo(safe(text))


def register_cli(app: Flask) -> None:
    """Add the `akeneo` command group to `flask`."""
    app.cli.add_command(akeneo)


def _one_line(action: Callable[[], T]) -> T:
    """Run `action`; an App error (bad URL, refused credential, PIM error) ends in one line."""
    try:
        return action()
    except AppError as error:
        raise click.ClickException(safe(error.message)) from None


def _origin(raw: str) -> str:
    """The PIM's origin: a PIM the App is connected to as stored (it passed the host policy when
    it connected: `make run`'s local PIM needs no extra setting), any other as /activate checks
    it."""
    stored = _one_line(lambda: normalise(raw, allow_http=True).origin)
    if current.store().is_connected(stored):
        return stored
    settings = current.settings()
    policy = PimUrlPolicy(settings.pim_allowed_hosts, settings.pim_allow_http)
    return _one_line(lambda: policy.check(raw))


def _token_source(pim_flag: str | None) -> tuple[str, TokenSource]:
    """--pim: that PIM's App token; else AKENEO_ACCESS_TOKEN, else the connection, else App."""
    settings = current.settings()
    if pim_flag:
        origin = _origin(pim_flag)
        return origin, AppToken(current.store(), origin)
    if not settings.pim_url:
        raise click.ClickException("Name the PIM with --pim URL, or set AKENEO_PIM_URL.")
    origin = _origin(settings.pim_url)
    if settings.access_token:
        return origin, StaticToken(settings.access_token)
    if settings.connection:
        return origin, ConnectionToken(
            current.client(), current.store(), origin, settings.connection
        )
    return origin, AppToken(current.store(), origin)


@akeneo.command("connections")
def connections() -> None:
    """List the connected PIMs: scopes, user, when, revoked. Never the token."""
    rows = current.store().connections()
    if not rows:
        click.echo("No PIM is connected yet.")
    for c in rows:
        who = f"{c.user.name or '?'} ({c.user.sub})" if c.user else "-"
        state = "REVOKED" if c.revoked else "ok"
        echo(
            f"{c.pim_url}  {state}  connected {c.connected_at:%Y-%m-%d %H:%M}Z  user {who}  "
            f"scopes: {' '.join(c.scopes) or '-'}"
        )


@akeneo.command("call", short_help="Call an API path and print what the PIM answers.")
@click.argument("path")
@click.option("--pim", "pim_url", help="Use this PIM's stored App token.")
@click.option(
    "--method",
    type=click.Choice(["GET", "POST", "PATCH", "DELETE"], case_sensitive=False),
    default="GET",
    show_default=True,
)
@click.option("--data", help="The body: JSON, or @FILE (JSON Lines on a list: an upsert).")
@click.option("--all", "every_page", is_flag=True, help="Follow pages; one JSON line per item.")
def call(path: str, pim_url: str | None, method: str, data: str | None, every_page: bool) -> None:
    """Call an API PATH (e.g. /api/rest/v1/channels) and print what the PIM answered.

    \b
    GET prints the JSON; with --all, every item of every page, one JSON line each.
    POST, PATCH, DELETE print the status and Location (what was created).
    PATCH of a list (--data @items.jsonl, or a JSON array) upserts 100 items a request,
    prints one line per item and exits 1 when any item failed.

    \b
    The token: with --pim, that PIM's App token; otherwise, for AKENEO_PIM_URL,
    AKENEO_ACCESS_TOKEN if set, else the AKENEO_CONNECTION_* credentials, else the App token.
    """
    if not path.startswith("/api/"):
        raise click.ClickException("PATH is an API path that starts with /api/.")
    origin, tokens = _token_source(pim_url)
    api = PimApi(origin, tokens, current.client())
    method = method.upper()
    if method == "GET":
        if data:
            raise click.ClickException("--data goes with POST or PATCH.")
        if every_page:
            _one_line(lambda: _print_items(api, path))
        else:
            body: Any = _one_line(lambda: api.get(path))
            echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    items = _parse_body(data)
    if isinstance(items, list):
        if method != "PATCH":
            raise click.ClickException("A list of items is upserted with --method PATCH.")
        failed = _one_line(lambda: _print_upserts(api, path, items))
        if failed:
            raise click.ClickException(f"{failed} item(s) were refused.")
        return
    written = _one_line(lambda: api.write(method, path, items))
    line = f"{written.status}"
    if written.location:
        line += f" {written.location}"
    echo(line)


def _print_items(api: PimApi, path: str) -> None:
    for item in api.items(path):
        echo(json.dumps(item, ensure_ascii=False))


def _parse_body(data: str | None) -> Any:
    """--data as JSON: a file with @, JSON Lines (several lines) or a JSON array → a list."""
    if data is None:
        return None
    text = data
    if data.startswith("@"):
        try:
            text = Path(data[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise click.ClickException(f"Cannot read {data[1:]}: {error.strerror}.") from None
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        if len(lines) > 1:
            return [json.loads(line) for line in lines]
        return json.loads(text)
    except ValueError as error:
        raise click.ClickException(f"--data is not JSON ({error}).") from None


def _print_upserts(api: PimApi, path: str, items: list[Any]) -> int:
    failed = 0
    for result in api.upsert_list(path, items):
        failed += not result.ok
        line: dict[str, Any] = {"line": result.line, "status_code": result.status}
        if result.identifier:
            line["identifier"] = result.identifier
        if result.message:
            line["message"] = result.message
        if result.errors:
            line["errors"] = list(result.errors)
        echo(json.dumps(line, ensure_ascii=False))
    return failed


@akeneo.command("catalogs")
@click.option("--pim", "pim_url", required=True, help="A connected PIM.")
def catalogs(pim_url: str) -> None:
    """List the App's catalogs in a PIM: id, enabled or not, name."""
    origin = _origin(pim_url)
    found = _one_line(lambda: current.catalogs(origin).all())
    if not found:
        echo(f"The App has no catalog in {origin} yet (connecting makes one).")
    for catalog in found:
        state = "enabled " if catalog.enabled else "disabled"
        echo(f"{catalog.id}  {state}  {catalog.name}")


@akeneo.command("products")
@click.option("--pim", "pim_url", required=True, help="A connected PIM.")
@click.option("--limit", default=10, show_default=True, help="How many products (1 to 100).")
@click.option("--all", "every_page", is_flag=True, help="Every product of the catalog.")
def products(pim_url: str, limit: int, every_page: bool) -> None:
    """Print the catalog's mapped products, one JSON line each."""
    if not 1 <= limit <= 100:
        raise click.ClickException("--limit is a number from 1 to 100.")
    origin = _origin(pim_url)
    _one_line(lambda: _print_mapped(current.catalogs(origin), limit, every_page))


def _print_mapped(catalogs: Catalogs, limit: int, every_page: bool) -> None:
    catalog_id = catalogs.store.catalog_id(catalogs.pim_url) or catalogs.ensure().id
    after: str | None = None
    while True:
        page = catalogs.mapped_products(catalog_id, limit=limit, after=after)
        if page.unusable:
            raise click.ClickException(explain_unusable(page.unusable))
        for product in page.products:
            echo(json.dumps(product, ensure_ascii=False))
        if not every_page or not page.next_cursor:
            return
        after = page.next_cursor


@akeneo.command("sync")
@click.option("--pim", "pim_url", help="A connected PIM (default: every connected PIM).")
@click.option("--full", is_flag=True, help="Read every product again, not only the changed.")
@click.option("--wait", is_flag=True, help="Wait for the workers to finish; exit 1 on a failure.")
def sync(pim_url: str | None, full: bool, wait: bool) -> None:
    """Queue a sync of the App's catalog for the workers (celery -A app.tasks worker)."""
    store = current.store()
    origins = [_origin(pim_url)] if pim_url else [c.pim_url for c in store.connections()]
    if not origins:
        raise click.ClickException("No PIM is connected yet.")
    for origin in origins:
        if not store.catalog_id(origin):
            _one_line(lambda: current.catalogs(origin).ensure())  # noqa: B023 - called at once
        queued = start_sync(origin, full=full)
        echo(f"{origin}  {'queued' if queued else 'already queued or running'}")
    if wait and not all(_wait_for(origin) for origin in origins):
        raise SystemExit(1)


def _wait_for(origin: str) -> bool:
    """Print the sync's progress until it ends; True when it finished."""
    said, hinted, started = "", False, time.monotonic()
    while True:
        status = current.sync_store().status(origin)
        text = describe(status)
        if text != said:
            echo(f"{origin}  {text}")
            said = text
        if status is None or not status.active:
            return status is not None and status.state == FINISHED
        if status.state == QUEUED and not hinted and time.monotonic() - started > 30:
            click.echo("No worker has taken the sync yet: is `celery -A app.tasks worker` running?")
            hinted = True
        time.sleep(1)


@akeneo.command("notify-scopes")
@click.argument("pim_url")
def notify_scopes(pim_url: str) -> None:
    """Tell PIM_URL that the App now needs AKENEO_SCOPES (its users are notified)."""
    origin = _origin(pim_url)
    scopes = current.settings().scopes
    connection = _one_line(lambda: current.store().connection(origin))
    if connection and not set(scopes) - set(connection.scopes):
        echo(f"{origin} granted every scope of AKENEO_SCOPES already: nothing to ask.")
        return
    _one_line(lambda: current.app_api(origin).notify_scopes(scopes))
    click.echo(
        f"{origin} was told the App needs: {' '.join(scopes)}. Its users grant them by opening "
        "the App again."
    )


@akeneo.command("forget")
@click.argument("pim_url")
def forget(pim_url: str) -> None:
    """Delete the stored connection to PIM_URL (the PIM keeps its side: disconnect it there)."""
    # normalised as /activate does, with no host policy: a PIM no longer allowed can be forgotten
    origin = _one_line(lambda: normalise(pim_url, allow_http=True).origin)
    if not current.store().forget(origin):
        raise click.ClickException(f"No connection to {origin} is stored.")
    click.echo(f"Forgot the connection to {origin}.")


@akeneo.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored token with the first TOKEN_ENCRYPTION_KEY."""
    if not current.settings().token_key_given:
        raise click.ClickException(
            "TOKEN_ENCRYPTION_KEY is not set: tokens are encrypted with a key derived from "
            "SECRET_KEY, and there is nothing to rotate. Set TOKEN_ENCRYPTION_KEY first."
        )
    count = _one_line(lambda: current.store().rotate_keys())
    click.echo(
        f"Re-encrypted {count} token(s) with the first key of TOKEN_ENCRYPTION_KEY. The older "
        "keys (and SECRET_KEY's) no longer decrypt anything you need."
    )
