"""The App's pages: thin views that call the flow, the PIM client and the store."""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from .akeneo import AkeneoClient
from .api import PimApi
from .errors import PimError, TokenRevoked
from .flow import CONNECTED_PIM, CONNECTED_USER, Flow
from .security import check_csrf
from .store import Store
from .tokens import AppToken

log = logging.getLogger(__name__)

bp = Blueprint("app", __name__)

CHANNELS_PATH = "/api/rest/v1/channels"


def flow() -> Flow:
    """The App's activation flow, built once in create_app()."""
    return current_app.extensions["akeneo_flow"]  # type: ignore[no-any-return]


def store() -> Store:
    """The App's store, built once in create_app()."""
    return current_app.extensions["akeneo_store"]  # type: ignore[no-any-return]


def akeneo() -> AkeneoClient:
    """The PIM client, built once in create_app()."""
    return current_app.extensions["akeneo_client"]  # type: ignore[no-any-return]


@bp.get("/activate")
def activate() -> Response:
    """Activate URL: the PIM opens it with ?pim_url=…; send the user to the PIM's consent page."""
    return redirect(flow().start(session, request.args.get("pim_url")))


@bp.get("/callback")
def callback() -> Response:
    """Callback URL: the PIM comes back with ?code=…&state=… (or ?error=…)."""
    flow().finish(session, request.args)
    return redirect(url_for("app.home"))


@bp.get("/")
def home() -> tuple[str, int] | str:
    """The connected page for a connected session, the welcome page otherwise."""
    pim_url = session.get(CONNECTED_PIM)
    connection = store().connection(pim_url) if pim_url else None
    if connection is None:
        return render_template("welcome.html", **_setup_info())

    user_sub = session.get(CONNECTED_USER)
    page: dict[str, Any] = {
        "connection": connection,
        "user": store().user(connection.pim_url, user_sub) if user_sub else None,
        "missing_scopes": [s for s in flow().settings.scopes if s not in connection.scopes],
        "channels": None,
        "api_error": None,
    }
    status = 200
    if not connection.revoked:
        api = PimApi(connection.pim_url, AppToken(store(), connection.pim_url), akeneo())
        try:
            page["channels"] = [channel["code"] for channel in api.items(CHANNELS_PATH)]
        except TokenRevoked:
            # the App was disconnected in the PIM (now marked so): offer to reconnect, never loop
            page["connection"] = store().connection(connection.pim_url)
        except PimError as error:
            page["api_error"] = error.message
            status = error.status
    if page["connection"].revoked:
        status = 401
    return render_template("connected.html", **page), status


@bp.post("/scopes/notify")
def notify_scopes() -> Response:
    """Tell the connected PIM that the App now needs all of AKENEO_SCOPES."""
    check_csrf()
    connection = store().connection(session.get(CONNECTED_PIM) or "")
    if connection is None or connection.revoked:
        return redirect(url_for("app.home"))
    akeneo().notify_scopes(connection.pim_url, connection.access_token, flow().settings.scopes)
    flash("The PIM was told. Its users can grant the new scopes by opening the App again.")
    return redirect(url_for("app.home"))


@bp.post("/logout")
def logout() -> Response:
    """End this browser's session; the stored connection stays for the next visit."""
    check_csrf()
    session.clear()
    return redirect(url_for("app.home"))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the store answers, 503 otherwise (for load balancers and HEALTHCHECK)."""
    try:
        store().ping()
    except Exception:
        log.exception("health check: the store does not answer")
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok"), 200


def _setup_info() -> dict[str, Any]:
    settings = flow().settings
    return {
        "activate_url": url_for("app.activate", _external=True),
        "callback_url": url_for("app.callback", _external=True),
        "settings": settings,
        "is_https": request.is_secure,
    }
