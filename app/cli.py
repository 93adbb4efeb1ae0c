"""`flask --app app akeneo …`: look after the stored connections from a shell or a script.

Errors end with a one-line reason on stderr and exit code 1: no traceback, never a token.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo

from . import current
from .api import PimApi
from .errors import AppError
from .pim_url import PimUrlPolicy, normalise
from .tokens import AppToken, PasswordGrantToken, StaticToken, TokenSource


class QuietGroup(AppGroup):
    """The `akeneo` group: its commands print what they were asked for, without the App's INFO
    log lines in between (a LOG_LEVEL that was set shows them)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command with the App's log at WARNING unless LOG_LEVEL was set."""
        app = ctx.ensure_object(ScriptInfo).load_app()
        if "LOG_LEVEL" not in app.extensions[current.SETTINGS].env:
            logging.getLogger("app").setLevel(logging.WARNING)
        return super().invoke(ctx)


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
    """Add the `akeneo` command group to `flask`: the core's commands, and room for each
    feature's (add_commands)."""
    group = QuietGroup("akeneo", help=akeneo.help)
    for command in akeneo.commands.values():
        group.add_command(command)
    app.cli.add_command(group)


def add_commands(app: Flask, *commands: click.Command) -> None:
    """Add a feature's commands to this App's `flask akeneo` group."""
    group = app.cli.commands["akeneo"]
    assert isinstance(group, click.Group)
    for command in commands:
        group.add_command(command)


def one_line(action: Callable[[], T]) -> T:
    """Run `action`; an App error (bad URL, refused credential, PIM error) ends in one line."""
    try:
        return action()
    except AppError as error:
        raise click.ClickException(safe(error.message)) from None


def origin_of(raw: str) -> str:
    """The PIM's origin: a PIM the App is connected to as stored (it passed the host policy when
    it connected: `make run`'s local PIM needs no extra setting), any other as /activate checks
    it."""
    stored = one_line(lambda: normalise(raw, allow_http=True).origin)
    if current.store().is_connected(stored):
        return stored
    settings = current.settings()
    policy = PimUrlPolicy(settings.pim_allowed_hosts, settings.pim_allow_http)
    return one_line(lambda: policy.check(raw))


def _token_source(pim_flag: str | None) -> tuple[str, TokenSource]:
    """--pim: that PIM's App token; else AKENEO_ACCESS_TOKEN, else the connection, else App."""
    settings = current.settings()
    if pim_flag:
        origin = origin_of(pim_flag)
        return origin, AppToken(current.store(), origin)
    if not settings.pim_url:
        raise click.ClickException("Name the PIM with --pim URL, or set AKENEO_PIM_URL.")
    origin = origin_of(settings.pim_url)
    if settings.access_token:
        return origin, StaticToken(settings.access_token)
    if settings.connection:
        return origin, PasswordGrantToken(
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
            one_line(lambda: _print_items(api, path))
        else:
            body: Any = one_line(lambda: api.get(path))
            echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    items = _parse_body(data)
    if isinstance(items, list):
        if method != "PATCH":
            raise click.ClickException("A list of items is upserted with --method PATCH.")
        failed = one_line(lambda: _print_upserts(api, path, items))
        if failed:
            raise click.ClickException(f"{failed} item(s) were refused.")
        return
    written = one_line(lambda: api.write(method, path, items))
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


@akeneo.command("notify-scopes")
@click.argument("pim_url")
def notify_scopes(pim_url: str) -> None:
    """Tell PIM_URL that the App now needs AKENEO_SCOPES (its users are notified)."""
    origin = origin_of(pim_url)
    scopes = current.settings().scopes
    connection = one_line(lambda: current.store().connection(origin))
    if connection and not set(scopes) - set(connection.scopes):
        echo(f"{origin} granted every scope of AKENEO_SCOPES already: nothing to ask.")
        return
    one_line(lambda: current.app_api(origin).notify_scopes(scopes))
    click.echo(
        f"{origin} was told the App needs: {' '.join(scopes)}. Its users grant them by opening "
        "the App again."
    )


@akeneo.command("forget")
@click.argument("pim_url")
def forget(pim_url: str) -> None:
    """Delete the stored connection to PIM_URL (the PIM keeps its side: disconnect it there)."""
    # normalised as /activate does, with no host policy: a PIM no longer allowed can be forgotten
    origin = one_line(lambda: normalise(pim_url, allow_http=True).origin)
    if not current.forget(origin):  # the features drop what they keep of it, then the core
        raise click.ClickException(f"No connection to {origin} is stored.")
    click.echo(f"Forgot the connection to {origin} and what the App kept of it.")


@akeneo.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored token with the first TOKEN_ENCRYPTION_KEY."""
    if not current.settings().token_key_given:
        raise click.ClickException(
            "TOKEN_ENCRYPTION_KEY is not set: tokens are encrypted with a key derived from "
            "SECRET_KEY, and there is nothing to rotate. Set TOKEN_ENCRYPTION_KEY first."
        )
    count = one_line(lambda: current.store().rotate_keys())
    click.echo(
        f"Re-encrypted {count} token(s) with the first key of TOKEN_ENCRYPTION_KEY. The older "
        "keys (and SECRET_KEY's) no longer decrypt anything you need."
    )
