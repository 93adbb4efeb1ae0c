"""The extensions' endpoints: the action the PIM POSTs, and the product tab it frames.

The action answers within the PIM's 5 s by noting the products for the sync's workers (each read
again from the catalog, and stored or dropped, as an event does). The tab is a page the PIM's
origin alone may frame; it asks the PIM for a token (postMessage) and sends it as a bearer token
for the product's data: a framed page gets no session cookie, the token is its one credential.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request, url_for
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from .. import current as core
from ..catalogs import current as catalogs
from ..catalogs.media import fetch_media
from ..catalogs.views import product_value, targets
from ..sync import QueueDown, queue_changes
from . import current
from .definitions import names_served_by
from .store import Extension
from .verify import Refused, check_action, check_timestamp, check_token, products_of

log = logging.getLogger(__name__)

MEDIA_SECONDS = 300  # how long the tab's image link works (the tab shows it at once)

bp = Blueprint(
    "extensions",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/extensions/static",
)


def _answer(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"message": message, **extra}), status


def _extension(key: str, route: str) -> Extension:
    """The extension whose URL holds `key`, if it is one served by `route` (an action's key is
    no tab's, and the other way round)."""
    found = current.store().by_key(key)
    if found is None or found.name not in names_served_by(route):
        abort(404)
    return found


@bp.post("/extensions/<key>/action")
def action(key: str) -> tuple[Response, int]:
    """`Sync with …` in the product grid or on a product page: read those products again."""
    extension = _extension(key, "action")
    body = request.get_data(cache=False)
    try:
        check_action(body, request.headers.get("signature"), extension.secret)
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("The body is not a JSON object.")
        check_timestamp(payload)
        uuids = products_of(payload)
    except Refused as refused:
        log.warning("extension action refused pim=%s: %s", extension.pim_url, refused)
        return _answer(401, str(refused))
    except json.JSONDecodeError:
        return _answer(400, "The body is not JSON.")
    except ValueError as error:  # no product uuids, or too many
        return _answer(400, str(error))
    try:
        queue_changes(extension.pim_url, dict.fromkeys(uuids, False))
    except QueueDown:
        return _answer(503, "The App cannot take it right now: try again in a minute.")
    told = (
        "1 product: the App reads it"
        if len(uuids) == 1
        else f"{len(uuids)} products: the App reads them"
    )
    return _answer(200, f"Queued {told} again.", queued=len(uuids))


@bp.get("/extensions/<key>/tab")
def tab(key: str) -> Response:
    """The product tab's page; it loads the product's data with the PIM's token."""
    extension = _extension(key, "tab")
    page = render_template(
        "extensions/tab.html",
        key=key,
        pim_origin=extension.pim_url,
        product_uuid=request.args.get("product[uuid]", ""),
        # the PIM user's locale, from the iframe's query (dates are shown as they read them)
        locale=request.args.get("user[ui_locale]", "en_US")[:16],
    )
    response = Response(page, mimetype="text/html")
    # the connected PIM alone may frame it; its script only talks to the App
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        f"object-src 'none'; frame-ancestors {extension.pim_url}"
    )
    return response


@bp.get("/extensions/<key>/tab/data")
def tab_data(key: str) -> tuple[Response, int]:
    """The product as the App holds it, for a request carrying the PIM's token (once)."""
    extension = _extension(key, "tab")
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    try:
        claims = check_token(token, extension.secret)
    except Refused as refused:
        return _answer(401, str(refused))
    expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    if not current.store().use_token(str(claims["jti"])[:255], expires):
        return _answer(401, "The token was used before.")
    uuid = request.args.get("uuid", "")
    if not 0 < len(uuid) <= 36:
        return _answer(400, "Which product? (?uuid=…)")
    view = catalogs.catalog(extension.pim_url).product(uuid)
    shown = _as_shown(key, view.product) if view.product else {}
    return _answer(
        200,
        view.notice or "",
        product=view.product,
        read_at=view.read_at.isoformat() if view.read_at else None,
        in_selection=view.product is not None,
        **shown,
    )


def _as_shown(key: str, product: dict[str, Any]) -> dict[str, Any]:
    """The product as the App's own product page shows it: the title, the image (through the
    App: the PIM's media need the App's token), then each value with its label, in the schema's
    order, as a person reads it ("11.90 EUR")."""
    shown: dict[str, Any] = {"title": product.get("title"), "image": None, "values": []}
    for name, label, kind in targets(catalogs.schema()):
        value = product.get(name)
        if kind == "image":
            if value and shown["image"] is None:
                token = _media_signer().dumps({"key": key, "url": value})
                shown["image"] = {
                    "src": url_for("extensions.media", key=key, token=token),
                    "alt": label,
                }
        elif name != "title":
            shown["values"].append({"label": label, "text": product_value(value) or "—"})
    return shown


@bp.get("/extensions/<key>/media/<token>")
def media(key: str, token: str) -> Response:
    """The product tab's image: a media file of the extension's PIM, fetched with the App's
    token. The tab has no cookie, so its data answer signs the image's URL for this extension,
    for MEDIA_SECONDS; nothing else is served."""
    extension = _extension(key, "tab")
    try:
        signed = _media_signer().loads(token, max_age=MEDIA_SECONDS)
    except BadData:
        abort(404)
    if not isinstance(signed, dict) or signed.get("key") != key:
        abort(404)
    content, content_type = fetch_media(core.app_api(extension.pim_url), str(signed.get("url")))
    response = Response(content, mimetype=content_type)
    response.headers["Cache-Control"] = f"private, max-age={MEDIA_SECONDS}"
    return response


def _media_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="extensions.media")
