"""`flask --app app akeneo …`: look after the stored connections from a shell or a script.

Errors end with a one-line reason on stderr and exit code 1: no traceback, never a token.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .akeneo import AkeneoClient
from .config import Settings
from .errors import AppError
from .pim_url import PimUrlPolicy
from .store import Connection, Store

akeneo = AppGroup("akeneo", help="The App's connections to Akeneo PIMs.")


def register_cli(app: Flask) -> None:
    """Add the `akeneo` command group to `flask`."""
    app.cli.add_command(akeneo)


def _store() -> Store:
    return current_app.extensions["akeneo_store"]  # type: ignore[no-any-return]


def _client() -> AkeneoClient:
    return current_app.extensions["akeneo_client"]  # type: ignore[no-any-return]


def _settings() -> Settings:
    return current_app.extensions["akeneo_settings"]  # type: ignore[no-any-return]


def _connection(pim_url: str | None) -> Connection:
    """The usable connection to `pim_url` (or AKENEO_PIM_URL), or a one-line failure."""
    settings = _settings()
    raw = pim_url or settings.pim_url
    if not raw:
        raise click.ClickException("Name the PIM with --pim URL, or set AKENEO_PIM_URL.")
    try:
        origin = PimUrlPolicy(settings.pim_allowed_hosts, settings.pim_allow_http).check(raw)
    except AppError as error:
        raise click.ClickException(error.message) from None
    connection = _store().connection(origin)
    if connection is None:
        raise click.ClickException(
            f"The App is not connected to {origin}: connect it from the PIM."
        )
    if connection.revoked:
        raise click.ClickException(f"{origin} revoked the App's token: connect it again.")
    return connection


def _pim_call(connection: Connection, action: Any) -> Any:
    """Run `action()`; a PIM refusal becomes a one-line failure (and marks a revoked token)."""
    try:
        return action()
    except AppError as error:
        if error.status == 401:
            _store().mark_revoked(connection.pim_url)
        raise click.ClickException(error.message) from None


@akeneo.command("connections")
def connections() -> None:
    """List the connected PIMs: scopes, user, when, revoked. Never the token."""
    rows = _store().connections()
    if not rows:
        click.echo("No PIM is connected yet.")
    for c in rows:
        who = f"{c.user.name or '?'} ({c.user.sub})" if c.user else "-"
        state = "REVOKED" if c.revoked else "ok"
        click.echo(
            f"{c.pim_url}  {state}  connected {c.connected_at:%Y-%m-%d %H:%M}Z  user {who}  "
            f"scopes: {' '.join(c.scopes) or '-'}"
        )


@akeneo.command("call")
@click.argument("path")
@click.option("--pim", "pim_url", help="The PIM whose stored App token to use (AKENEO_PIM_URL).")
def call(path: str, pim_url: str | None) -> None:
    """GET an API PATH (e.g. /api/rest/v1/channels) with the PIM's App token; print the JSON."""
    if not path.startswith("/api/"):
        raise click.ClickException("PATH is an API path that starts with /api/.")
    connection = _connection(pim_url)
    body = _pim_call(
        connection, lambda: _client().api_get(connection.pim_url, connection.access_token, path)
    )
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))


@akeneo.command("notify-scopes")
@click.argument("pim_url")
def notify_scopes(pim_url: str) -> None:
    """Tell PIM_URL that the App now needs AKENEO_SCOPES (its users are notified)."""
    connection = _connection(pim_url)
    scopes = _settings().scopes
    _pim_call(
        connection,
        lambda: _client().notify_scopes(connection.pim_url, connection.access_token, scopes),
    )
    click.echo(
        f"{connection.pim_url} was told the App needs: {' '.join(scopes)}. Its users grant them "
        "by opening the App again."
    )


@akeneo.command("forget")
@click.argument("pim_url")
def forget(pim_url: str) -> None:
    """Delete the stored connection to PIM_URL (the PIM keeps its side: disconnect it there)."""
    origin = pim_url.strip().rstrip("/")
    if not _store().forget(origin):
        raise click.ClickException(f"No connection to {origin} is stored.")
    click.echo(f"Forgot the connection to {origin}.")


@akeneo.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored token with the first TOKEN_ENCRYPTION_KEY."""
    try:
        count = _store().rotate_keys()
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Re-encrypted {count} token(s) with the first key. Older keys can now be removed.")
