"""How fast the local PIM's API answers, and how much it takes at once: as a real PIM when set
(`PIM_LATENCY`, `PIM_MAX_IN_FLIGHT`); at once, and anything, when not (`make run`). `/pace`
tells the benchmarks what it saw."""

from __future__ import annotations

import json
import threading
import time

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.wrappers import Response

bp = Blueprint("devpim_pace", __name__)


def _pace() -> Pace:
    return current_app.extensions["devpim"].pace  # type: ignore[no-any-return]


class Pace:
    """How fast the local PIM's API answers, and how much it takes at once: as a real PIM when
    set (`PIM_LATENCY`, `PIM_MAX_IN_FLIGHT`); at once, and anything, when not (`make run`).

    A real PIM takes 100 to 300 ms a call and refuses a fifth call in flight per connection with
    429, not always with a Retry-After (Akeneo's good practices)."""

    def __init__(self, latency: float = 0.0, max_in_flight: int | None = None) -> None:
        self.latency, self.max_in_flight = latency, max_in_flight
        self.in_flight: dict[str, int] = {}  # per token (a connection): calls being answered
        self.most_in_flight: dict[str, int] = {}  # per token: the most seen at once
        self.refused = 0
        self.calls = 0  # API calls answered (or refused)
        self._lock = threading.Lock()

    def enter(self, token: str) -> tuple[dict[str, str], bytes] | None:
        """A call with `token` starts: None, or the 429 that refuses it (the fifth at once)."""
        with self._lock:
            self.calls += 1
            now_in = self.in_flight.get(token, 0) + 1
            if self.max_in_flight is not None and now_in > self.max_in_flight:
                self.refused += 1
                # every other refusal has no Retry-After: the App must back off on its own
                headers = {"Retry-After": "1"} if self.refused % 2 else {}
                body = json.dumps({"code": 429, "message": "Too many requests in flight."})
                return headers, body.encode()
            self.in_flight[token] = now_in
            self.most_in_flight[token] = max(now_in, self.most_in_flight.get(token, 0))
        return None

    def leave(self, token: str) -> None:
        """The call with `token` is answered."""
        with self._lock:
            self.in_flight[token] -= 1

    def most(self) -> int:
        """The most calls seen in flight at once for any one token."""
        with self._lock:
            return max(self.most_in_flight.values(), default=0)


@bp.before_app_request
def paced() -> Response | None:
    """An API call waits the PIM's latency, and a fifth one in flight for a token is refused."""
    if not request.path.startswith("/api/"):
        return None
    pace = _pace()
    token = request.headers.get("Authorization", "")
    refused = pace.enter(token)
    if refused is not None:
        headers, body = refused
        return Response(body, 429, headers, content_type="application/json")
    g.devpim_paced = token
    if pace.latency:
        time.sleep(pace.latency)
    return None


@bp.teardown_app_request
def unpaced(_: BaseException | None) -> None:
    token = g.pop("devpim_paced", None)
    if token is not None:
        _pace().leave(token)


@bp.get("/pace")
def pace_now() -> tuple[Response, int]:
    """How the local PIM was used (for benchmarks): the most API calls in flight for one token,
    the calls refused for that, and the events its platform delivered or still holds."""
    events = current_app.extensions["devpim_events"]
    return jsonify(
        most_in_flight=_pace().most(),
        refused=_pace().refused,
        api_calls=_pace().calls,
        delivered=len(events.delivered),
        undelivered=events.backlog(),
    ), 200
