"""`alap dev`: the server and the sandbox fakes in one process, wired together.

This is the only production-side module that imports `server/sandbox/`, and only `alap dev`
imports it.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from .app import ENGINE, LEDGER, SETTINGS, SMS_SENDER, UPSTREAMS, build_engine, create_app, install_engine
from .engine.engine import Engine
from .recharge.saga import RechargeSaga
from .recharge.saga_policy import SagaPolicy
from .recharge.worker import RechargeWorker
from .render.environment import Renderer
from .reload import watch
from .config import Settings
from .sandbox.bdapps import create_bdapps_fake
from .sandbox.ecare import ECARE_PATH, create_ecare_fake
from .sandbox.ecourier import create_ecourier_fake
from .sandbox.web_phone import SIMULATOR_PATH, add_simulator
from .tooling.check import require_servable

SANDBOX_APP_ID = "APP_000001"
SANDBOX_PASSWORD = "sandbox-password"


def dev_settings(settings: Settings) -> Settings:
    """Fill what a newcomer has not configured with sandbox values pointing at this process."""
    base = f"http://127.0.0.1:{settings.port}/sandbox"
    return settings.model_copy(update={
        "bdapps_base_url": f"{base}/bdapps",
        "bdapps_app_id": SANDBOX_APP_ID, "bdapps_password": SANDBOX_PASSWORD,
        "ecourier_base_url": f"{base}/ecourier",
        "ecourier_api_key": "sandbox-key", "ecourier_api_secret": "sandbox-secret",
        "ecourier_user_id": "sandbox-user",
        "ecare_url": f"{base}/ecare{ECARE_PATH}", "ecare_access_id": "sandbox", "ecare_access_pass": "sandbox-pass",
    })


def create_dev_app(settings: Settings) -> web.Application:
    """Raises FlowErrors when the flows do not pass `alap check` (errors, not warnings)."""
    settings = dev_settings(settings)
    app = create_app(settings)
    require_servable(settings, app[ENGINE].actions)

    def rebuild() -> Engine:  # the same rules as at start: a check error keeps the last good engine
        engine = build_engine(settings, upstreams=app[UPSTREAMS], ledger=app[LEDGER])
        require_servable(settings, engine.actions)
        return engine

    app.cleanup_ctx.append(_recharge_worker)
    app.cleanup_ctx.append(watch(
        [settings.flows_dir, settings.templates_dir, settings.locales_dir],
        rebuild=rebuild, install=lambda engine: install_engine(app, engine)))
    app.router.add_get("/", _to_simulator)
    callback = f"http://127.0.0.1:{settings.port}/bdapps/ussd"
    app.add_subapp("/sandbox/bdapps/", create_bdapps_fake(callback, settings.bdapps_app_id, settings.bdapps_password))
    app.add_subapp("/sandbox/ecourier/", create_ecourier_fake("sandbox-key", "sandbox-secret", "sandbox-user"))
    app.add_subapp("/sandbox/ecare/", create_ecare_fake("sandbox", "sandbox-pass"))
    add_simulator(app, (settings.budget_ascii, settings.budget_unicode))
    return app


async def _to_simulator(request: web.Request) -> web.Response:
    raise web.HTTPFound(SIMULATOR_PATH)


async def _recharge_worker(app: web.Application):
    """In `alap dev` (one process, maybe no Redis) the recharge worker runs in-process, so a
    recharge confirmed in the simulator is charged, recharged and receipted by the fakes."""
    settings = app[SETTINGS]
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    upstreams = app[UPSTREAMS]
    saga = RechargeSaga(app[LEDGER], upstreams.caas, upstreams.ecare, app[SMS_SENDER], renderer,
                        SagaPolicy.from_settings(settings), worker_id="dev")
    stop = asyncio.Event()
    task = asyncio.create_task(RechargeWorker(app[LEDGER], saga, worker_id="dev").run(stop))
    yield
    stop.set()
    await task
