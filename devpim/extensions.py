"""The local PIM's UI extensions, as `extensions/` in Akeneo's reference describes them.

- The API: `GET/POST /api/rest/v1/ui-extensions`, `PATCH/DELETE …/{uuid}`, with the scope
  `manage_extensions`; an App sees and changes only its own extensions.
- The screens: the products page (the grid) shows each `pim.product-grid.action-bar` action as
  a button over the ticked products; a product's page shows its `pim.product.header` actions and
  its `pim.product.tab` iframes.
- An action is a POST from the PIM's server (5 s time-out, no retry), its JSON body signed with
  HMAC-SHA512 (hex, in a `signature` header) under the extension's secret.
- An iframe asks for a token with `postMessage({type: 'request_jwt'})`; the page answers
  `{type: 'JWT_TOKEN', token}` to the frame's origin: a JWT (HS256, the extension's secret) with
  `jti`, `iat`, `exp` (an hour), `userId` and `userUuid`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from flask import Blueprint, current_app, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response

BASE = "/api/rest/v1/ui-extensions"
POSITIONS = {
    "action": {"pim.product.header", "pim.product-grid.action-bar", "pim.product.index"},
    "iframe": {"pim.product.header", "pim.product.tab", "pim.product-grid.action-bar"},
    "link": {"pim.product.header"},
}
ACTION_TIMEOUT = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class UiExtension:
    uuid: str
    name: str
    version: str
    type: str
    position: str
    configuration: dict[str, Any]
    created: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        configuration = {k: v for k, v in self.configuration.items() if k != "secret"}
        return {
            "uuid": self.uuid,
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "position": self.position,
            "configuration": configuration,
        }


class UiExtensions:
    """The App's extensions in this PIM."""

    def __init__(self) -> None:
        self.items: dict[str, UiExtension] = {}
        self.last_action: dict[str, Any] | None = None  # what the last action answered

    def take_answer(self) -> dict[str, Any] | None:
        """The last action's answer, shown once (as a PIM's notification): a later page no
        longer shows an old error."""
        answer, self.last_action = self.last_action, None
        return answer

    def at(self, position: str) -> list[UiExtension]:
        return [e for e in self.items.values() if e.position == position]

    def snapshot(self) -> list[dict[str, Any]]:
        return [vars(e) for e in self.items.values()]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        self.items = {e["uuid"]: UiExtension(**e) for e in saved}


def extensions() -> UiExtensions:
    return current_app.extensions["devpim_extensions"]  # type: ignore[no-any-return]


bp = Blueprint("ui_extensions", __name__)


def _guard() -> tuple[Response, int] | None:
    granted = current_app.extensions["devpim"].check_bearer(request.headers.get("Authorization"))
    if isinstance(granted, tuple):
        return jsonify(code=granted[0], message=granted[1]), granted[0]
    if "manage_extensions" not in granted:
        message = "Access forbidden. You are not allowed to manage extensions."
        return jsonify(code=403, message=message), 403
    return None


def _invalid(body: dict[str, Any], partial: bool) -> str | None:
    kind = body.get("type")
    if not partial and (not body.get("name") or kind not in POSITIONS):
        return "name and a type (action, iframe, link) are required."
    if not partial and body.get("position") not in POSITIONS.get(str(kind), set()):
        return f"The position {body.get('position')!r} does not take a {kind}."
    configuration = body.get("configuration")
    if configuration is None and partial:
        return None
    if not isinstance(configuration, dict):
        return "configuration is required."
    url = urlsplit(str(configuration.get("url") or ""))
    if url.scheme != "https" and not (url.scheme == "http" and url.hostname in LOOPBACK):
        return "configuration.url must be an https URL."
    secret = configuration.get("secret")
    if secret is not None and len(str(secret)) < 32:
        return "configuration.secret must be 32 characters at least."
    return None


@bp.get(BASE)
def list_extensions() -> tuple[Response, int]:
    if refused := _guard():
        return refused
    return jsonify([e.public() for e in extensions().items.values()]), 200


@bp.post(BASE)
def create_extension() -> tuple[Response, int]:
    if refused := _guard():
        return refused
    body = request.get_json(silent=True) or {}
    if problem := _invalid(body, partial=False):
        return jsonify(code=422, message=problem), 422
    if any(e.name == body["name"] for e in extensions().items.values()):
        return jsonify(code=422, message="An extension with this name exists already."), 422
    extension = UiExtension(
        str(uuid.uuid4()),
        str(body["name"]),
        str(body.get("version", "")),
        str(body["type"]),
        str(body["position"]),
        dict(body["configuration"]),
    )
    extensions().items[extension.uuid] = extension
    return jsonify(extension.public()), 201


@bp.route(f"{BASE}/<extension_uuid>", methods=["PATCH", "DELETE"])
def one_extension(extension_uuid: str) -> tuple[Response, int]:
    if refused := _guard():
        return refused
    extension = extensions().items.get(extension_uuid)
    if extension is None:
        return jsonify(code=404, message="Extension not found."), 404
    if request.method == "DELETE":
        del extensions().items[extension_uuid]
        return Response(status=204), 204
    body = request.get_json(silent=True) or {}
    if problem := _invalid(body, partial=True):
        return jsonify(code=422, message=problem), 422
    for name in ("name", "version", "type", "position"):
        if name in body:
            setattr(extension, name, str(body[name]))
    if "configuration" in body:
        extension.configuration = {**extension.configuration, **body["configuration"]}
    return jsonify(extension.public()), 200


# -- the screens ------------------------------------------------------------------------------


def token_for(extension: UiExtension, user: Any) -> str:
    """The JWT a framed extension gets on request (HS256 under its secret)."""
    moment = time.time()
    claims = {
        "jti": str(uuid.uuid4()),
        "iat": moment,
        "exp": moment + 3600,
        "userId": str(user.id),
        "userUuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"devpim-user-{user.id}")),
    }
    return jwt.encode(claims, str(extension.configuration.get("secret", "")), algorithm="HS256")


def frame_url(extension: UiExtension, product: dict[str, Any], user: Any, pim_url: str) -> str:
    params = {
        "position": extension.position,
        "product[uuid]": product["uuid"],
        "product[identifier]": product.get("identifier", ""),
        "user[id]": user.id,
        "user[username]": user.firstname.lower(),
        "user[email]": user.email,
        "user[ui_locale]": "en_US",
        "user[catalog_locale]": "en_US",
        "user[catalog_scope]": "ecommerce",
        "tenant": urlsplit(pim_url).netloc,
    }
    url = str(extension.configuration["url"])
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


@bp.get("/products/<product_uuid>")
def product_page(product_uuid: str) -> Any:
    """A product's page: its values, the header's actions, and the extensions' tabs."""
    product = current_app.extensions["devpim_catalog"].get(product_uuid)
    if product is None:
        return "No such product.", 404
    pim = current_app.extensions["devpim"]
    tabs = [
        {
            "extension": e,
            "src": frame_url(e, product, pim.user, pim.pim_url),
            "origin": "{0.scheme}://{0.netloc}".format(urlsplit(str(e.configuration["url"]))),
            "token": token_for(e, pim.user),
        }
        for e in extensions().at("pim.product.tab")
    ]
    return render_template(
        "pim_product.html",
        pim=pim,
        product=product,
        actions=extensions().at("pim.product.header"),
        tabs=tabs,
        answer=extensions().take_answer(),
    )


@bp.post("/products/actions/<extension_uuid>")
def run_action(extension_uuid: str) -> Response:
    """A user pressed an action: the PIM's server POSTs the signed selection to the App."""
    extension = extensions().items.get(extension_uuid)
    uuids = request.form.getlist("uuid")
    back = request.form.get("back", "/products")
    if extension is None or extension.type != "action" or not uuids:
        extensions().last_action = {"status": 400, "message": "Tick at least one product."}
        return redirect(back)
    pim = current_app.extensions["devpim"]
    data: dict[str, Any] = (
        {"productUuids": uuids[:500], "productModelCodes": []}
        if extension.position == "pim.product-grid.action-bar"
        else {"productUuid": uuids[0]}
    )
    user = pim.user
    body = json.dumps(
        {
            "data": data,
            "context": {"locale": "en_US", "channel": "ecommerce"},
            "user": {"uuid": str(user.id), "username": user.firstname.lower(), "groups": []},
            "timestamp": int(time.time()),
        }
    ).encode()
    secret = str(extension.configuration.get("secret", ""))
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["signature"] = hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()
    post = current_app.extensions.get("devpim_action_post", _post)
    extensions().last_action = post(str(extension.configuration["url"]), body, headers)
    return redirect(back)


def _post(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    try:
        answer = requests.post(
            url, data=body, headers=headers, timeout=ACTION_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException:
        return {"status": None, "message": "The App did not answer within 5 seconds."}
    try:
        message = answer.json().get("message", "")
    except ValueError:
        message = answer.text[:200]
    return {"status": answer.status_code, "message": message}
