"""What the core offers features: work done once the answer is sent."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, current_app
from werkzeug.test import EnvironBuilder

from app.features import after_response


def test_work_after_the_answer_is_done_once_the_answer_is_sent(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    done: list[str] = []

    @app.get("/test/after")
    def answer() -> str:
        after_response(lambda: done.append(f"queued by {current_app.name}"))
        after_response(lambda: done.append(str(1 / 0)))  # a failure after the answer: logged
        done.append("answered")
        return "ok"

    response = app.test_client().get("/test/after", buffered=False)
    assert response.status_code == 200
    assert done == ["answered"]  # the browser has its answer, nothing waited for the work
    response.close()  # what the WSGI server does once the last byte is out
    assert done == ["answered", f"queued by {app.name}"]
    assert "work after the answer failed" in caplog.text
    assert caplog.records[-1].levelno == logging.ERROR


def test_outside_a_request_the_work_is_done_at_once(app: Flask) -> None:
    done: list[int] = []
    with app.app_context():
        after_response(lambda: done.append(1))
    assert done == [1]


def test_work_after_the_answer_is_done_when_the_server_writes_it_all_but_never_closes_it(
    app: Flask,
) -> None:
    done: list[str] = []

    @app.get("/test/after")
    def answer() -> str:
        after_response(lambda: done.append("queued"))
        return "ok"

    # as werkzeug's development server when the browser resets the connection: every chunk
    # written, then an error before close()
    environ = EnvironBuilder(path="/test/after").get_environ()
    body = app(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(body) == b"ok"
    assert done == ["queued"]
    body.close()  # a server that closes it as well does not run the work twice
    assert done == ["queued"]
