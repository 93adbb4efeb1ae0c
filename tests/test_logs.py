"""Logs: the server's request lines lose their secrets, and no caller can forge a log line."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from app.logs import RedactQuery
from tests.pims import PimUser


def redacted(message: str, *args: object) -> str:
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, message, args, None)
    RedactQuery().filter(record)
    return record.getMessage()


def test_request_lines_lose_codes_states_and_tokens() -> None:
    line = redacted(
        '%s - - "%s" %s', "127.0.0.1", "GET /callback?code=S3CR3T&state=ST4TE&x=1 HTTP/1.1", "302"
    )
    assert "S3CR3T" not in line and "ST4TE" not in line
    assert "/callback?code=[hidden]&state=[hidden]&x=1" in line
    assert "access_token=[hidden]" in redacted("GET /x?access_token=abc")


def test_other_lines_are_left_alone() -> None:
    assert redacted("GET /activate?pim_url=https://p.example %s", 302) == (
        "GET /activate?pim_url=https://p.example 302"
    )


def test_a_forged_error_cannot_write_a_log_line(
    user: PimUser, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    state = parse_qs(urlsplit(user.activate()).query)["state"][0]
    client.get(
        "/callback",
        query_string={"error": "x\nINFO app.flow: activation finished", "state": state},
    )
    cancelled = [r.getMessage() for r in caplog.records if "cancelled" in r.getMessage()]
    assert cancelled and all("\n" not in line for line in cancelled)
