"""The events feature's commands: `flask --app app akeneo events` and `… rotate-event-secret`."""

from __future__ import annotations

from functools import partial

import click
from flask.cli import with_appcontext

from .. import current as core
from ..cli import echo, one_line, origin_of
from . import current
from .subscribe import rotate
from .views import describe


@click.command("events")
@with_appcontext
def events() -> None:
    """Say, for each connected PIM, whether its changes arrive live."""
    connections = core.store().connections()
    if not connections:
        raise click.ClickException("No PIM is connected yet.")
    for connection in connections:
        local = current.settings().http_allowed
        _, badge, text = describe(current.store().subscription(connection.pim_url), local=local)
        text = f"{badge}: {text}"
        echo(f"{connection.pim_url}: {text}")


@click.command("rotate-event-secret")
@with_appcontext
@click.option("--pim", "pim_url", help="A connected PIM (default: every subscribed PIM).")
def rotate_event_secret(pim_url: str | None) -> None:
    """Sign events with a new secret; the old one still verifies until the platform has it."""
    origins = [origin_of(pim_url)] if pim_url else [c.pim_url for c in core.store().connections()]
    rotated = 0
    for origin in origins:
        connection = core.store().connection(origin)
        known = current.store().subscription(origin)
        if connection is None or connection.revoked or known is None or not known.subscription_id:
            if pim_url:
                raise click.ClickException(f"The App has no event subscription in {origin}.")
            continue
        one_line(
            partial(
                rotate,
                current.store(),
                core.client(),
                current.settings(),
                origin,
                connection.access_token,
            )
        )
        echo(f"{origin}: events are signed with a new secret (the old one verifies until then).")
        rotated += 1
    if not rotated:
        raise click.ClickException("No PIM has an event subscription yet.")
