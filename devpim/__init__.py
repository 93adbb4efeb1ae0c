"""A local stand-in for an Akeneo PIM, so the App connects end to end with no sandbox or tunnel.

It serves the App endpoints a real PIM serves (authorize, token, OpenID public key, scope update)
and the few REST API endpoints the App calls, with the same answers and errors. Delete this folder
when you no longer want it; the App does not import it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from werkzeug.wrappers import Response

from .catalogs import AppCatalogs, api_bp, configure_bp
from .events import EventPlatform
from .events import bp as event_platform_bp
from .extensions import UiExtensions
from .extensions import bp as ui_extensions_bp
from .pace import bp as pace_bp
from .products import Catalog, product_routes
from .state import (
    ConnectionAccount,
    ConnectionError422,
    PimState,
    PimUser,
    RegisteredApp,
    TokenError,
)

CHANNELS = [
    {
        "code": "ecommerce",
        "currencies": ["USD", "EUR"],
        "locales": ["en_US", "fr_FR"],
        "category_tree": "master",
        "labels": {"en_US": "Ecommerce"},
    },
    {
        "code": "mobile",
        "currencies": ["USD"],
        "locales": ["en_US"],
        "category_tree": "master",
        "labels": {"en_US": "Mobile"},
    },
    {
        "code": "print",
        "currencies": ["EUR"],
        "locales": ["de_DE", "fr_FR"],
        "category_tree": "master",
        "labels": {"en_US": "Print"},
    },
]
SCOPE_OF = {"/api/rest/v1/channels": "read_channel_settings"}
# what the real API says when a token lacks the scope
FORBIDDEN = {
    "read_channel_settings": "Access forbidden. You are not allowed to list channels.",
    "read_products": "Access forbidden. You are not allowed to list products.",
    "write_products": "Access forbidden. You are not allowed to create or update products.",
    "delete_products": "Access forbidden. You are not allowed to delete products.",
}


def create_devpim(config: Mapping[str, Any]) -> Flask:
    """A local PIM at `PIM_URL` with one custom App registered (client id, secret, URLs)."""
    pim = Flask(__name__)
    pim.json.sort_keys = False  # type: ignore[attr-defined]  # mapped products keep schema order
    pim.config.update(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_NAME="devpim_session",  # never clash with the App's cookie on 127.0.0.1
    )
    app = RegisteredApp(
        client_id=config["APP_CLIENT_ID"],
        client_secret=config["APP_CLIENT_SECRET"],
        activate_url=config["APP_ACTIVATE_URL"],
        callback_url=config["APP_CALLBACK_URL"],
    )
    user = PimUser(
        id=config.get("USER_ID", "1"),
        firstname=config.get("USER_FIRSTNAME", "Julia"),
        lastname=config.get("USER_LASTNAME", "Stark"),
        email=config.get("USER_EMAIL", "julia@example.com"),
    )
    connection = None
    if config.get("CONNECTION_CLIENT_ID"):
        connection = ConnectionAccount(
            client_id=config["CONNECTION_CLIENT_ID"],
            secret=config["CONNECTION_SECRET"],
            username=config["CONNECTION_USERNAME"],
            password=config["CONNECTION_PASSWORD"],
        )
    pim.extensions["devpim"] = PimState(
        config["PIM_URL"],
        app,
        user,
        code_ttl=float(config.get("CODE_TTL", 30)),
        connection=connection,
        connection_token_ttl=float(config.get("CONNECTION_TOKEN_TTL", 3600)),
    )
    pace = pim.extensions["devpim"].pace
    pace.latency = float(config.get("PIM_LATENCY", 0))
    limit = config.get("PIM_MAX_IN_FLIGHT")
    pace.max_in_flight = int(limit) if limit else None
    pim.extensions["devpim_catalog"] = Catalog(
        config["PIM_URL"],
        int(config.get("PRODUCT_COUNT", 60)),
        media_bytes=int(config.get("MEDIA_BYTES", 4096)),
    )
    catalogs = AppCatalogs(limit=int(config.get("CATALOG_LIMIT", 200)))
    pim.extensions["devpim_catalogs"] = catalogs
    events = EventPlatform(config["PIM_URL"])
    pim.extensions["devpim_events"] = events
    pim.extensions["devpim_catalog"].listeners.append(_product_event(events, app, user))
    pim.register_blueprint(bp)
    pim.register_blueprint(pace_bp)  # after bp: an injected fault comes before the pace
    pim.register_error_handler(404, _not_served)
    pim.register_blueprint(product_routes(catalog, _guard))
    pim.register_blueprint(api_bp)
    pim.register_blueprint(configure_bp)
    pim.register_blueprint(event_platform_bp)
    pim.extensions["devpim_extensions"] = UiExtensions()
    pim.register_blueprint(ui_extensions_bp)
    return pim


def _product_event(
    events: EventPlatform, app: RegisteredApp, user: PimUser
) -> Callable[[str, str, str], None]:
    """Tell the Event Platform of a product change (made by the App's API calls, or a user)."""

    def tell(kind: str, product_uuid: str, via: str) -> None:
        author = (
            {"identifier": app.client_id, "type": "api"}
            if via == "api"
            else {"identifier": user.id, "type": "ui"}
        )
        data = {"product": {"uuid": product_uuid}, "author": author}
        events.emit(f"com.akeneo.pim.v1.product.{kind}", data)

    return tell


def _not_served(error: Exception) -> Any:
    """An API path this local PIM does not serve: say so in the API's own error format."""
    if not request.path.startswith("/api/"):
        return error
    return jsonify(
        code=404,
        message=f"The local PIM does not serve {request.method} {request.path}: it serves only "
        "the endpoints in devpim/ (add yours there, as a real PIM answers it).",
    ), 404


def catalog() -> Catalog:
    """This local PIM's products."""
    return current_app.extensions["devpim_catalog"]  # type: ignore[no-any-return]


def state() -> PimState:
    """This local PIM's memory."""
    return current_app.extensions["devpim"]  # type: ignore[no-any-return]


def _with_query(url: str, params: dict[str, str]) -> str:
    # the PIM appends to the registered URL, which may already have a query
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


bp = Blueprint("pim", __name__, template_folder="templates")


@bp.before_app_request
def injected_fault() -> Response | None:
    """A fault a test asked for (PimState.inject): a 429, a 5xx, a slow answer, a cut."""
    fault = state().take_fault(request.method, request.path)
    if fault is None:
        return None
    if fault.delay:
        time.sleep(fault.delay)
    if fault.status is None:
        return None  # only slow: then the real answer
    return Response(fault.body, status=fault.status, headers=fault.headers)


@bp.get("/")
def home() -> str:
    pim = state()
    connect_url = _with_query(pim.app.activate_url, {"pim_url": pim.pim_url})
    events = current_app.extensions["devpim_events"]
    return render_template(
        "pim_home.html", pim=pim, app=pim.app, connect_url=connect_url, events=events
    )


@bp.post("/apps/revoke")
def revoke() -> Response:
    events: EventPlatform = current_app.extensions["devpim_events"]
    events.emit("com.akeneo.pim.v1.app.deleted", {"app": {"client_id": state().app.client_id}})
    events.revoke_all()
    current_app.extensions["devpim_extensions"].items.clear()  # the App's extensions go with it
    state().revoke()
    # the App's user goes, and its catalogs with it (akeneo-catalogs.md §2.6)
    current_app.extensions["devpim_catalogs"].delete_all()
    return redirect("/")


@bp.post("/apps/event-platform")
def event_platform_permission() -> Response:
    """The permission checkbox in the App's connection settings."""
    events: EventPlatform = current_app.extensions["devpim_events"]
    events.allowed = bool(request.form.get("allowed"))
    if not events.allowed:  # unticked after subscribing: the platform suspends what exists
        for subscription in list(events.subscriptions.values()):
            events.suspend(subscription, "The App lost the Event Platform permission.")
    return redirect("/")


@bp.get("/products")
def products_page() -> str:
    """Activity > Products: the first products, to rename or delete one (the App hears of it)."""
    found = [catalog().get(u) for _, u in catalog().keys("identifier")[:60]]
    ui_extensions = current_app.extensions["devpim_extensions"]
    return render_template(
        "pim_products.html",
        pim=state(),
        products=[p for p in found if p],
        saved=request.args.get("saved"),
        grid_actions=ui_extensions.at("pim.product-grid.action-bar"),
        answer=ui_extensions.take_answer(),
    )


@bp.post("/products/<product_uuid>/rename")
def rename_product(product_uuid: str) -> Response:
    name = request.form.get("name", "").strip()[:255]
    if name and catalog().get(product_uuid):
        values = {"name": [{"locale": "en_US", "scope": None, "data": name}]}
        catalog().upsert(product_uuid, {"values": values}, via="ui")
    return redirect(f"/products?saved={product_uuid}")


@bp.post("/products/import")
def import_products() -> tuple[Response, int]:
    """An import, as a PIM user runs one: the first `count` products (by identifier) get the
    English name `name`; the platform hears of each (one event per product, at its pace)."""
    count, name = int(request.form.get("count", "0")), request.form.get("name", "Imported")[:255]
    values = {"name": [{"locale": "en_US", "scope": None, "data": name}]}
    uuids = [u for _, u in catalog().keys("identifier")[:count]]
    for product_uuid in uuids:
        catalog().upsert(product_uuid, {"values": values}, via="ui")
    return jsonify(imported=len(uuids)), 200


@bp.post("/products/<product_uuid>/delete")
def delete_product(product_uuid: str) -> Response:
    catalog().delete(product_uuid, via="ui")
    return redirect("/products?saved=deleted")


@bp.get("/connect/apps/v1/authorize")
def authorize() -> Response | str:
    pim = state()
    args = request.args
    if args.get("response_type") != "code" or args.get("client_id") != pim.app.client_id:
        abort(400, "Unknown App, or response_type is not 'code'.")
    if len(args.get("scope", "")) > 1000:
        abort(400, "The scope parameter is too long.")
    scopes = pim.grantable(args.get("scope", ""))
    if not pim.needs_consent(scopes):
        # "Open app" on a connected App: straight back with a fresh code, no screen
        return redirect(_callback(pim, pim.issue_code(scopes), args.get("state")))
    return render_template(
        "pim_consent.html",
        pim=pim,
        app=pim.app,
        scopes=sorted(scopes),
        state=args.get("state"),
        scope=" ".join(sorted(scopes)),
    )


@bp.post("/connect/apps/v1/authorize")
def consent() -> Response:
    pim = state()
    state_param = request.form.get("state") or None
    if request.form.get("decision") != "allow":
        params = {"error": "access_denied"} | ({"state": state_param} if state_param else {})
        return redirect(_with_query(pim.app.callback_url, params))
    code = pim.issue_code(pim.grantable(request.form.get("scope", "")))
    return redirect(_callback(pim, code, state_param))


@bp.post("/connect/apps/v1/oauth2/token")
def token() -> tuple[Response, int]:
    # fields come from the body, form-encoded or JSON; query parameters are ignored
    form = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    try:
        return jsonify(state().exchange({k: str(v) for k, v in (form or {}).items()})), 200
    except TokenError as error:
        return jsonify(error.body), 400


@bp.post("/api/oauth/v1/token")
def password_token() -> tuple[Response, int]:
    auth = request.authorization
    basic = (auth.username or "", auth.password or "") if auth else None
    body = request.get_json(silent=True) or request.form.to_dict()
    try:
        return jsonify(state().password_token(basic, body)), 200
    except ConnectionError422 as error:
        return jsonify(error.body), 422


@bp.get("/connect/apps/v1/openid/public-key")
def public_key() -> Response:
    return jsonify(public_key=state().certificate_pem)


@bp.post("/connect/apps/v1/scopes/update")
def scopes_update() -> tuple[Response, int]:
    granted = state().check_bearer(request.headers.get("Authorization"))
    if isinstance(granted, tuple):
        return jsonify(code=granted[0], message=granted[1]), granted[0]
    state().request_scopes(request.args.get("scopes", ""))
    return jsonify("Ok"), 200


@bp.get("/api/rest/v1/system-information")
def system_information() -> tuple[Response, int]:
    return _api(lambda: {"version": "local", "edition": "Serenity"})


@bp.get("/api/rest/v1/channels")
def channels() -> tuple[Response, int]:
    return _api(lambda: _page("/api/rest/v1/channels", CHANNELS))


def _callback(pim: PimState, code: str, state_param: str | None) -> str:
    params = {"code": code} | ({"state": state_param} if state_param else {})
    return _with_query(pim.app.callback_url, params)


def _guard(needed: str | None) -> tuple[Response, int] | None:
    """401 or 403 exactly as the real API says them, or None to let the call through."""
    granted = state().check_bearer(request.headers.get("Authorization"))
    if isinstance(granted, tuple):
        return jsonify(code=granted[0], message=granted[1]), granted[0]
    # "write" includes "read", and "delete" includes both
    implied = {
        needed,
        str(needed).replace("read_", "write_"),
        str(needed).replace("read_", "delete_"),
    }
    if needed and not implied & granted:
        return jsonify(code=403, message=FORBIDDEN[needed]), 403
    return None


def _api(body: Any) -> tuple[Response, int]:
    """Answer an API call: 401/403 like the real API, else the JSON that `body()` builds."""
    return _guard(SCOPE_OF.get(request.path)) or (jsonify(body()), 200)


def _page(path: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One page of a list, with `_links.next` like the real API's offset pagination."""
    limit = max(1, min(100, request.args.get("limit", 10, type=int) or 10))
    page = max(1, request.args.get("page", 1, type=int) or 1)
    base = state().pim_url + path
    chunk = items[(page - 1) * limit : page * limit]
    links: dict[str, Any] = {"self": {"href": f"{base}?page={page}&limit={limit}"}}
    if page * limit < len(items):
        links["next"] = {"href": f"{base}?page={page + 1}&limit={limit}"}
    return {"_links": links, "current_page": page, "_embedded": {"items": chunk}}
