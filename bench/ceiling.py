"""The App with one more route, for the benchmark only: the Flask ceiling of this set-up.

`/bench/ceiling` sets a session value and redirects, as /activate does, with none of its work:
served by the same gunicorn settings and the same App (middleware, cookie signing, headers), it
tells how close /activate comes to what Flask can do here at all.
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
