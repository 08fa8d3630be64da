"""Wiring: `create_app` builds the aiohttp application from settings (aiohttp app-factory style:
typed AppKeys, resources opened and closed in a cleanup context, in-flight hops drained on
shutdown)."""
from __future__ import annotations

from typing import AsyncIterator

import aiohttp
from aiohttp import web

from . import metrics
from .actions import build_registry
from .bdapps.client import BdappsGateway
from .bdapps.routes import APP_ID, USSD_SERVICE, add_routes
from .bdapps.ussd import UssdService
from .config import Settings
from .engine.actions import ActionRegistry
from .engine.engine import Engine
from .engine.loader import load_flow_dir
from .render.budget import Budget
from .render.environment import Renderer
from .store import Store, open_store
from .upstreams import Upstreams

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
STORE = web.AppKey("store", Store)
HTTP = web.AppKey("http", aiohttp.ClientSession)
UPSTREAMS = web.AppKey("upstreams", Upstreams)

SHUTDOWN_DRAIN_SECONDS = 8.0


def build_engine(settings: Settings, registry: ActionRegistry | None = None,
                 upstreams: Upstreams | None = None) -> Engine:
    """Load and check every flow; raises FlowErrors listing all problems."""
    registry = registry or build_registry(upstreams)
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    flows = load_flow_dir(settings.flows_dir, renderer, registry)
    return Engine(flows, renderer, registry, budget=Budget(settings.budget_ascii, settings.budget_unicode),
                  unicode=settings.ussd_unicode, default_language=settings.default_language)


def create_app(settings: Settings, *, store: Store | None = None, engine: Engine | None = None,
               registry: ActionRegistry | None = None, upstreams: Upstreams | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[count_callbacks])
    app[SETTINGS] = settings
    app[UPSTREAMS] = upstreams or Upstreams.from_settings(settings)
    app[ENGINE] = engine or build_engine(settings, registry, app[UPSTREAMS])
    app[STORE] = store or open_store(settings.redis_url)
    app[APP_ID] = settings.bdapps_app_id
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_drain_hops)
    add_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


@web.middleware
async def count_callbacks(request: web.Request, handler):
    """Callbacks by route and HTTP status (BDApps routes only: the rest is not traffic)."""
    if not request.path.startswith("/bdapps/"):
        return await handler(request)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.CALLBACKS.labels(request.path, str(status)).inc()


async def metrics_endpoint(request: web.Request) -> web.Response:
    active = await request.app[STORE].count_active()
    body, content_type = metrics.exposition(active)
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Made here, after any fork, so each worker process has its own pool.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=30))
    app[HTTP] = http
    gateway = BdappsGateway(settings.bdapps_base_url, settings.bdapps_app_id, settings.bdapps_password, http)
    app[USSD_SERVICE] = UssdService(app[ENGINE], app[STORE], gateway, settings.session_ttl,
                                    settings.default_language)
    yield
    await app[USSD_SERVICE].drain(SHUTDOWN_DRAIN_SECONDS)
    await http.close()
    await app[UPSTREAMS].aclose()
    await app[STORE].close()


async def _drain_hops(app: web.Application) -> None:
    if USSD_SERVICE in app:
        await app[USSD_SERVICE].drain(SHUTDOWN_DRAIN_SECONDS)


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    ok = await store.ping()
    return web.json_response({"status": "ok" if ok else "store unavailable", "store": store.name},
                             status=200 if ok else 503)
