"""The App's pages: thin views that call the flow, the PIM client and the store."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from . import current, signals
from .errors import PimError, PimHttpError, TokenRevoked
from .features import panels
from .flow import CONNECTED_USER
from .security import check_csrf
from .tokens import NotConnected

log = logging.getLogger(__name__)

bp = Blueprint("app", __name__)

CHANNELS_PATH = "/api/rest/v1/channels"
# a page waits on the PIM for its list: bounded, so a PIM whose list never ends costs little
PAGE_LIST_BOUNDS: dict[str, Any] = {"max_items": 100, "max_pages": 5, "max_seconds": 5.0}


@bp.get("/activate")
def activate() -> Response:
    """Activate URL: the PIM opens it with ?pim_url=…; send the user to the PIM's consent page."""
    return redirect(current.flow().start(session, request.args.get("pim_url")))


@bp.get("/callback")
def callback() -> Response:
    """Callback URL: the PIM comes back with ?code=…&state=… (or ?error=…)."""
    connection = current.flow().finish(session, request.args)
    session.permanent = True  # the cookie lasts as long as the session row (12 h), not the tab
    signals.connected(connection.pim_url)  # the features set themselves up in this PIM
    return redirect(url_for("app.home"))


@bp.get("/")
def home() -> tuple[str, int] | str:
    """The connected page for a connected session, the welcome page otherwise."""
    pim_url = current.flow().connected_pim(session)
    connection = current.store().connection(pim_url) if pim_url else None
    if connection is None:
        return render_template("welcome.html", **_setup_info())

    user_sub = session.get(CONNECTED_USER)
    page: dict[str, Any] = {
        "connection": connection,
        "user": current.store().user(connection.pim_url, user_sub) if user_sub else None,
        "missing_scopes": [s for s in current.settings().scopes if s not in connection.scopes],
        "channels": None,
        "channels_cut": None,
        "api_error": None,
        "panels": [],
    }
    status = 200
    if not connection.revoked:
        listing = current.app_api(connection.pim_url).items(CHANNELS_PATH, **PAGE_LIST_BOUNDS)
        try:
            page["channels"] = [str(channel.get("code", "?")) for channel in listing]
            page["channels_cut"] = listing.cut
        except TokenRevoked:
            # the App was disconnected in the PIM (now marked so, or even forgotten since):
            # offer to reconnect, never loop
            page["connection"] = replace(connection, revoked=True)
        except PimHttpError as error:
            page["api_error"] = error.message
            if error.pim_status == 403:
                said = error.pim_message.rstrip(".")
                page["api_error"] = (
                    f"The PIM refused to list its channels: {said}. The App needs the "
                    "read_channel_settings scope: ask the PIM for it above, or connect again."
                )
            status = error.status
        except PimError as error:
            page["api_error"] = error.message
            status = error.status
    if not page["connection"].revoked:
        # apart from the channels: each feature's panel explains its own failures
        try:
            page["panels"] = [
                (panel.template, data)
                for panel in panels()
                if (data := panel.context(connection)) is not None
            ]
        except TokenRevoked:
            page["connection"] = replace(connection, revoked=True)
    if page["connection"].revoked:
        status = 401
    return render_template("connected.html", **page), status


@bp.post("/scopes/notify")
def notify_scopes() -> Response:
    """Tell the connected PIM that the App now needs all of AKENEO_SCOPES."""
    check_csrf()
    pim_url = current.flow().connected_pim(session)
    if pim_url:
        try:
            current.app_api(pim_url).notify_scopes(current.settings().scopes)
            flash("The PIM was told. Its users can grant the new scopes by opening the App again.")
        except (NotConnected, TokenRevoked):
            pass  # the home page says that the App was disconnected, and offers to reconnect
    return redirect(url_for("app.home"))


@bp.post("/logout")
def logout() -> Response:
    """End this browser's session for good; the stored connection stays for the next visit."""
    check_csrf()
    current.flow().sign_out(session)
    flash("You are signed out. Open the App from your PIM to come back.")
    return redirect(url_for("app.home"))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the store answers, 503 otherwise (for load balancers and HEALTHCHECK)."""
    try:
        current.database().ping()
    except Exception:
        log.exception("health check: the store does not answer")
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok"), 200


def _setup_info() -> dict[str, Any]:
    settings = current.settings()
    # AKENEO_PUBLIC_URL when set; else the address this browser used (shown to it alone)
    base = settings.public_url or request.url_root.rstrip("/")
    return {
        "activate_url": base + url_for("app.activate"),
        "callback_url": base + url_for("app.callback"),
        "settings": settings,
        "is_https": base.startswith("https://"),
        # the port this App answers on, for `ngrok http <port>`
        "port": request.host.rpartition(":")[2] if ":" in request.host else "80",
    }
