"""The core's signals (blinker, as Flask-Dance's `oauth_authorized`): what features listen to.

Sent with the Flask app as sender, inside an app context:

- `pim_connected(app, pim_url=…)`: a callback stored a new token for `pim_url`;
- `pim_disconnected(app, pim_url=…, forgotten=…)`: the PIM refused the App's token (the App was
  disconnected there: `forgotten=False`), or the App forgets the PIM (`current.forget()`:
  `True`, sent before the connection is dropped, so that a feature can still use the token to
  undo what it made in the PIM).
"""

from __future__ import annotations

from blinker import Namespace
from flask import current_app

_signals = Namespace()
pim_connected = _signals.signal("pim-connected")
pim_disconnected = _signals.signal("pim-disconnected")


def connected(pim_url: str) -> None:
    """Tell the features that the App was connected to `pim_url` (again)."""
    pim_connected.send(current_app._get_current_object(), pim_url=pim_url)  # type: ignore[attr-defined]


def disconnected(pim_url: str, *, forgotten: bool) -> None:
    """Tell the features that the App lost `pim_url` (they drop what they keep of it)."""
    pim_disconnected.send(current_app._get_current_object(), pim_url=pim_url, forgotten=forgotten)  # type: ignore[attr-defined]
