"""The sync feature's command: `flask --app app akeneo sync [--pim URL] [--full] [--wait]`."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from .. import current as core
from ..catalogs import current as catalogs
from ..cli import echo, one_line, origin_of
from . import current
from .status import FINISHED, QUEUED, describe
from .tasks import queue_sync


@click.command("sync")
@with_appcontext
@click.option("--pim", "pim_url", help="A connected PIM (default: every connected PIM).")
@click.option("--full", is_flag=True, help="Read every product again, not only the changed.")
@click.option("--wait", is_flag=True, help="Wait for the workers to finish; exit 1 on a failure.")
def sync(pim_url: str | None, full: bool, wait: bool) -> None:
    """Queue a sync of the App's catalog for the workers (celery -A app.sync.make_celery worker)."""
    origins = [origin_of(pim_url)] if pim_url else [c.pim_url for c in core.store().connections()]
    if not origins:
        raise click.ClickException("No PIM is connected yet.")
    for origin in origins:
        if not catalogs.store().catalog_id(origin):
            one_line(lambda: catalogs.catalog(origin).ensure())  # noqa: B023 - called at once
        queued = queue_sync(origin, full=full)
        echo(f"{origin}  {'queued' if queued else 'already queued or running'}")
    if wait and not all(_wait_for(origin) for origin in origins):
        raise SystemExit(1)


def _wait_for(origin: str) -> bool:
    """Print the sync's progress until it ends; True when it finished."""
    said, hinted, started = "", False, time.monotonic()
    while True:
        status = current.store().status(origin)
        text = describe(status)
        if text != said:
            echo(f"{origin}  {text}")
            said = text
        if status is None or not status.active:
            return status is not None and status.state == FINISHED
        if status.state == QUEUED and not hinted and time.monotonic() - started > 30:
            click.echo(
                "No worker has taken the sync yet: is `celery -A app.sync.make_celery worker` "
                "running?"
            )
            hinted = True
        time.sleep(1)
