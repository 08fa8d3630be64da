"""The console's routes: pages behind `guarded` (server/admin/auth.py), the login form, and the
one write, resolving a ledger record. Bad input gets a 4xx page saying what was wrong."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from ..bdapps.routes import USSD_SERVICE
from ..engine.engine import Engine
from ..store import Store, StoreUnavailable
from ..store.ledger import Ledger, RechargeState, StateConflict
from ..store.ledger.records import ATTENTION_STATES
from . import views
from .auth import COOKIE, COOKIE_SECONDS, AdminAuth, client_address
from .texts import Words, pick_language

STATIC_DIR = Path(__file__).parent / "static"

_templates = Environment(loader=PackageLoader("server.admin", "templates"),
                         autoescape=select_autoescape(default=True, default_for_string=True),
                         trim_blocks=True, lstrip_blocks=True)

# The pages load nothing from elsewhere and run no script.
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'self'; font-src 'self'; img-src 'self'; "
                                      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Alap console", charset="UTF-8"'}


@dataclass
class Console:
    auth: AdminAuth
    store: Store
    ledger: Ledger


CONSOLE = web.AppKey("admin_console", Console)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def words_for(request: web.Request) -> Words:
    return Words(pick_language(request.headers.get("Accept-Language")))


def page(request: web.Request, template: str, status: int = 200, **values) -> web.Response:
    words = words_for(request)
    html = _templates.get_template(template).render(
        w=words, lang=words.language, csrf=request.app[CONSOLE].auth.csrf_token(), path=request.path, **values)
    return web.Response(text=html, status=status, content_type="text/html", headers=_HEADERS)


def error_page(request: web.Request, status: int, key: str, headers: dict | None = None, **values) -> web.Response:
    response = page(request, "error.html", status, status_code=status, message=words_for(request)(key, **values))
    response.headers.update(headers or {})
    return response


def _engine(request: web.Request) -> Engine:
    return request.app[USSD_SERVICE].engine  # the current one, also after a hot reload


def guarded(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def check(request: web.Request) -> web.StreamResponse:
        auth = request.app[CONSOLE].auth
        if auth.limited(client_address(request)):
            return error_page(request, 429, "err_limited", {"Retry-After": "300"})
        basic = auth.basic(request)
        if basic is False:
            auth.failed(request, "basic")
            return error_page(request, 401, "err_unauthorized", _CHALLENGE)
        if basic is None and not auth.cookie_ok(request):
            if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                # A browser: the login form (whose link asks for the browser's own Basic prompt).
                raise web.HTTPSeeOther(f"/admin/login?next={quote(request.path_qs)}")
            return error_page(request, 401, "err_unauthorized", _CHALLENGE)
        try:
            return await handler(request)
        except StoreUnavailable:
            return error_page(request, 503, "err_store", {"Retry-After": "5"})
    return check


# -- login ------------------------------------------------------------------------------------------

def _next(target: str | None) -> str:
    """Only back into the console (never an open redirect)."""
    return target if target and target.startswith("/admin") and not target.startswith("//") else "/admin"


async def login_form(request: web.Request) -> web.Response:
    return page(request, "login.html", next=_next(request.query.get("next")), failed=False)


async def login_basic(request: web.Request) -> web.StreamResponse:
    """The browser's own prompt: a Basic challenge until the right credentials come."""
    auth = request.app[CONSOLE].auth
    if auth.limited(client_address(request)):
        return error_page(request, 429, "err_limited", {"Retry-After": "300"})
    basic = auth.basic(request)
    if basic:
        raise web.HTTPSeeOther(_next(request.query.get("next")))
    if basic is False:
        auth.failed(request, "basic")
    return error_page(request, 401, "err_unauthorized", _CHALLENGE)


async def login(request: web.Request) -> web.StreamResponse:
    auth = request.app[CONSOLE].auth
    if auth.limited(client_address(request)):
        return error_page(request, 429, "err_limited", {"Retry-After": "300"})
    form = await request.post()
    target = _next(str(form.get("next", "")))
    if not auth.password_ok("admin", str(form.get("token", ""))):
        auth.failed(request, "form")
        return page(request, "login.html", 401, next=target, failed=True)
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, auth.cookie_value(), max_age=COOKIE_SECONDS, path="/admin", httponly=True,
                        samesite="Strict", secure=request.secure)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/admin/login")
    response.del_cookie(COOKIE, path="/admin")
    raise response


# -- pages ------------------------------------------------------------------------------------------

@guarded
async def index(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    return page(request, "index.html", flows=await views.flow_rows(_engine(request), console.store),
                ledger=await views.ledger_counts(console.ledger), active=await console.store.count_active(),
                attention=ATTENTION_STATES, resume=views.RESUME_COUNTED)


@guarded
async def flow(request: web.Request) -> web.Response:
    name = request.match_info["flow"]
    engine = _engine(request)
    if name not in engine.flows:
        return error_page(request, 404, "err_flow", name=name)
    period = request.query.get("range", "today")
    if period not in views.RANGES:
        return error_page(request, 400, "err_range", name=period)
    picture, counts = await views.flow_picture(engine, request.app[CONSOLE].store, name, period)
    return page(request, "flow.html", flow=engine.flows[name], picture=picture, counts=counts, period=period,
                periods=list(views.RANGES))


@guarded
async def ledger_list(request: web.Request) -> web.Response:
    ledger = request.app[CONSOLE].ledger
    state_name = request.query.get("state") or None
    if state_name is not None and state_name not in RechargeState.__members__:
        return error_page(request, 400, "err_state", name=state_name)
    state = RechargeState(state_name) if state_name else None
    return page(request, "ledger.html", records=await ledger.list(state, limit=200), state=state,
                counts=await views.ledger_counts(ledger), when=views.when)


@guarded
async def ledger_record(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    record = await request.app[CONSOLE].ledger.get(record_id)
    if record is None:
        return error_page(request, 404, "err_record", name=record_id)
    return page(request, "record.html", record=record, when=views.when, can_resolve=record.state in ATTENTION_STATES,
                resolved=request.query.get("resolved") == "1")


@guarded
async def ledger_resolve(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    if not console.auth.csrf_ok(request, str(form.get("csrf", ""))):
        return error_page(request, 403, "err_csrf")
    record_id = request.match_info["id"]
    note = str(form.get("note", "")).strip()
    if await console.ledger.get(record_id) is None:
        return error_page(request, 404, "err_record", name=record_id)
    if not note:
        return error_page(request, 400, "err_note")
    try:
        await console.ledger.resolve(record_id, note, by="operator:console")
    except StateConflict as exc:
        return error_page(request, 409, "err_conflict", name=exc.actual.value if exc.actual else "?")
    raise web.HTTPSeeOther(f"/admin/ledger/{quote(record_id)}?resolved=1")


@guarded
async def subscriber_search(request: web.Request) -> web.StreamResponse:
    number = request.query.get("number", "")
    parsed = views.parse_number(number)
    if parsed is None:
        return error_page(request, 400, "err_number", name=number)
    raise web.HTTPSeeOther(f"/admin/subscribers/{parsed[0]}")


@guarded
async def subscriber(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    parsed = views.parse_number(number)
    if parsed is None:
        return error_page(request, 400, "err_number", name=number)
    console = request.app[CONSOLE]
    view = await views.subscriber_view(console.store, console.ledger, *parsed)
    return page(request, "subscriber.html", view=view, when=views.when)


@guarded
async def not_found(request: web.Request) -> web.Response:
    return error_page(request, 404, "err_page", name=request.path)


def add_console_routes(app: web.Application) -> None:
    app.router.add_get("/admin", index)
    app.router.add_get("/admin/", index)
    app.router.add_get("/admin/login", login_form)
    app.router.add_post("/admin/login", login)
    app.router.add_get("/admin/login/basic", login_basic)
    app.router.add_post("/admin/logout", logout)
    app.router.add_get("/admin/flows/{flow}", flow)
    app.router.add_get("/admin/ledger", ledger_list)
    app.router.add_get("/admin/ledger/{id}", ledger_record)
    app.router.add_post("/admin/ledger/{id}/resolve", ledger_resolve)
    app.router.add_get("/admin/subscribers", subscriber_search)
    app.router.add_get("/admin/subscribers/{number}", subscriber)
    app.router.add_static("/admin/static/", STATIC_DIR)
    app.router.add_get("/admin/{tail:.*}", not_found)
