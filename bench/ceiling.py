"""Two ceilings for /activate, for the benchmark only.

- `create_app()`: the App with one more route, `/bench/ceiling`, which sets a session value and
  redirects, as /activate does, with none of its work: the App's own layers (middleware, cookie,
  headers) stay, so it tells what /activate's work costs;
- `create_bare_app()`: a bare Flask app whose `/activate` does only that, under the same gunicorn
  settings: it tells what the App's layers cost as well.
"""

from __future__ import annotations

from flask import Flask, redirect, session
from werkzeug.wrappers import Response

from app import create_app as create_the_app


def create_app() -> Flask:
    """The App, plus /bench/ceiling."""
    app = create_the_app()

    @app.get("/bench/ceiling")
    def ceiling() -> Response:
        session["bench"] = "x"
        return redirect("http://127.0.0.1/elsewhere")

    return app


def create_bare_app() -> Flask:
    """A bare Flask app: `/activate` sets a session value and redirects, nothing else."""
    bare = Flask("bare")
    bare.secret_key = "bare-flask-ceiling-" + "x" * 32

    @bare.get("/activate")
    def activate() -> Response:
        session["bench"] = "x"
        return redirect("http://127.0.0.1/elsewhere")

    @bare.get("/healthz")
    def healthz() -> str:  # what the launcher waits for
        return "ok"

    return bare
