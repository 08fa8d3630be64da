"""Wiring: `create_app` builds the aiohttp application from settings (aiohttp app-factory style:
typed AppKeys, resources opened and closed in a cleanup context, in-flight hops drained on
shutdown)."""
from __future__ import annotations

import asyncio
import contextlib
import gc
from decimal import Decimal
from typing import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from . import flow_publishing, metrics
from .actions import build_registry
from .admin import add_admin
from .bdapps.admission import RESERVED_CONNECTIONS, HopGate
from .bdapps.callers import CALLER_POLICY, CallerPolicy
from .integrations.bdapps import BdappsGateway, gateway_session
from .bdapps.push import ADMIN_TOKEN, PUSH_SERVICE, PushService, push_ussd
from .bdapps.resume import Resumes
from .bdapps.routes import APP_ID, DELIVERY_REPORTS, SMS_SERVICE, USSD_SERVICE, add_routes
from .bdapps.sms import SmsService
from .broadcast.redis_store import open_broadcast_store
from .broadcast.reports import delivery_report_hook
from .bdapps.ussd import UssdService
from .config import Settings
from .engine.actions import ActionRegistry
from .engine.engine import Engine
from .engine.errors import FlowErrors, FlowProblem, Mark
from .engine.loader import load_flow_dir
from .messaging import SmsSender, build_sms_sender
from .render.budget import Budget
from .render.catalogs import load_problems
from .render.environment import Renderer
from .store import Store, StoreUnavailable, open_store
from .store.ledger import Ledger, open_ledger
from .upstreams import Upstreams

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
STORE = web.AppKey("store", Store)
HTTP = web.AppKey("http", aiohttp.ClientSession)
UPSTREAMS = web.AppKey("upstreams", Upstreams)
SMS_SENDER = web.AppKey("sms_sender", SmsSender)
LEDGER = web.AppKey("ledger", Ledger)

SHUTDOWN_DRAIN_SECONDS = 8.0
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def build_engine(settings: Settings, registry: ActionRegistry | None = None,
                 upstreams: Upstreams | None = None, ledger: Ledger | None = None) -> Engine:
    """Load and check every flow; raises FlowErrors listing all problems, an unreadable
    catalog among them (without it every screen of that language would be English)."""
    limits = (Decimal(settings.recharge_min), Decimal(settings.recharge_max))
    registry = registry or build_registry(upstreams, ledger=ledger, recharge_limits=limits)
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    unreadable = load_problems(renderer.catalogs, settings.locales_dir)
    if unreadable:
        raise FlowErrors([FlowProblem(Mark(p.file, p.line, p.col), p.message) for p in unreadable])
    flows = load_flow_dir(settings.flows_dir, renderer, registry)
    return Engine(flows, renderer, registry, budget=Budget(settings.budget_ascii, settings.budget_unicode),
                  unicode=settings.ussd_unicode, default_language=settings.default_language)


def create_app(settings: Settings, *, store: Store | None = None, engine: Engine | None = None,
               registry: ActionRegistry | None = None, upstreams: Upstreams | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[CALLER_POLICY] = CallerPolicy.from_settings(settings.bdapps_allowed_ips, settings.trusted_proxies)
    app[UPSTREAMS] = upstreams or Upstreams.from_settings(settings)
    app[STORE] = store or open_store(settings.redis_url, settings.redis_prefix,
                                     max_connections=settings.max_hops_in_flight + RESERVED_CONNECTIONS)
    app[LEDGER] = open_ledger(app[STORE])
    app[ENGINE] = engine or build_engine(settings, registry, app[UPSTREAMS], app[LEDGER])
    flow_publishing.attach(app[ENGINE], app[STORE])
    app[APP_ID] = settings.bdapps_app_id
    app[ADMIN_TOKEN] = settings.admin_token or ""
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(_messaging_jobs)
    app.on_startup.append(_settle_garbage_collector)
    app.on_shutdown.append(_drain_hops)
    add_routes(app)
    app.router.add_post("/push/ussd", push_ussd)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    add_admin(app, settings.admin_token, app[STORE], app[LEDGER])
    return app


async def _settle_garbage_collector(app: web.Application) -> None:
    """Once everything is loaded: what exists now (flows, templates, catalogs, the code) lives
    as long as the process, so the collector stops walking it (`gc.freeze`), and it runs less
    often on the young objects every hop makes. A full collection then visits only what hops
    left behind: shorter pauses, which a worker's p99 feels (README.md, Performance)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def metrics_endpoint(request: web.Request) -> web.Response:
    store = request.app[STORE]
    up = await store.ping()
    active, ledger = None, None
    if up:  # a down store still scrapes, with alap_store_up 0 (docs/prometheus/alerts.yml)
        with contextlib.suppress(StoreUnavailable):
            active = await store.count_active()
            ledger = {state.value: n for state, n in (await request.app[LEDGER].counts()).items()}
    body, content_type = metrics.exposition(active, store_up=up, ledger=ledger)
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Made here, after any fork, so each worker process has its own pool.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=30))
    app[HTTP] = http
    # BDApps' /ussd/send and /sms/send on a client of their own: a hop holds one connection at
    # most, so hops never wait for one (server/bdapps/admission.py).
    connections = settings.max_hops_in_flight + RESERVED_CONNECTIONS
    bdapps_http = gateway_session(connections)
    gateway = BdappsGateway(settings.bdapps_base_url, settings.bdapps_app_id, settings.bdapps_password, bdapps_http,
                            connections=connections, timeout=settings.bdapps_timeout)
    engine, store = app[ENGINE], app[STORE]
    sender = build_sms_sender(settings, http, store, gateway=gateway)
    app[SMS_SENDER] = sender
    turns = dict(engine=engine, store=store, default_language=settings.default_language)
    app[USSD_SERVICE] = UssdService(**turns, session_ttl=settings.session_ttl, gateway=gateway,
                                    resumes=Resumes(settings.resume_window, settings.session_ttl),
                                    gate=HopGate(settings.max_hops_in_flight))
    app[SMS_SERVICE] = SmsService(**turns, session_ttl=settings.sms_session_ttl,
                                  reply=lambda to, text: sender.send(to, text, kind="reply"))
    app[PUSH_SERVICE] = PushService(**turns, session_ttl=settings.session_ttl, gateway=gateway,
                                    notice_by_sms=lambda to, text: sender.send(to, text, kind="notice"))
    # Reports of broadcast recipients update the broadcast's totals (server/broadcast/reports.py).
    app[DELIVERY_REPORTS] = delivery_report_hook(sender, open_broadcast_store(store))
    await flow_publishing.publish(engine, store, flow_publishing.version_ttl(settings))
    yield
    await _drain_hops(app)
    await sender.aclose()
    await http.close()
    await bdapps_http.close()
    await gateway.aclose()
    await app[UPSTREAMS].aclose()
    await app[STORE].close()


MESSAGING_JOB_SECONDS = 15.0


async def _messaging_jobs(app: web.Application) -> AsyncIterator[None]:
    """Send parked SMS that are due, poll DiniSoft delivery statuses (it has no reports) and
    count expired USSD sessions. Safe in every worker at once: parked messages are leased and
    expired sessions popped atomically."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(MESSAGING_JOB_SECONDS)
            await run_jobs_once(app)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_jobs_once(app: web.Application) -> None:
    """One round of the background jobs. A store that is away (a Redis restart) is one warning
    line per job, never a traceback: it is expected, and the next round tries again."""
    sender = app[SMS_SENDER]
    try:
        await sender.flush_parked()
        await sender.poll_dinisoft()
    except StoreUnavailable as exc:
        structlog.get_logger("alap.jobs").warning("messaging_job_store_unavailable", error=str(exc))
    except Exception:  # a passing upstream problem: try again next round
        structlog.get_logger("alap.jobs").exception("messaging_job_failed")
    await sweep_sessions(app[STORE])
    await keep_versions(app)


async def sweep_sessions(store: Store) -> None:
    """Count the USSD sessions that expired without a final screen (the funnel's drop-offs)."""
    try:
        timed_out, abandoned = await store.sweep_expired()
    except StoreUnavailable as exc:
        structlog.get_logger("alap.jobs").warning("session_sweep_store_unavailable", error=str(exc))
        return
    except Exception:
        structlog.get_logger("alap.jobs").exception("session_sweep_failed")
        return
    if timed_out:
        metrics.SESSIONS_ENDED.labels("timed_out").inc(timed_out)
    if abandoned:
        metrics.SESSIONS_ENDED.labels("abandoned").inc(abandoned)


async def keep_versions(app: web.Application) -> None:
    """Keep the flow versions this process runs in the store (server/flow_publishing.py)."""
    try:
        engine = app[USSD_SERVICE].engine if USSD_SERVICE in app else app[ENGINE]  # after a hot reload too
        await flow_publishing.keep(engine, app[STORE], flow_publishing.version_ttl(app[SETTINGS]))
    except StoreUnavailable as exc:
        structlog.get_logger("alap.jobs").warning("flow_versions_keep_store_unavailable", error=str(exc))
    except Exception:
        structlog.get_logger("alap.jobs").exception("flow_versions_keep_failed")


async def install_engine(app: web.Application, engine: Engine) -> None:
    """Hot reload: publish the new versions, then every service takes the new engine for its
    next turn; sessions started on a replaced version stay on it (the store keeps it)."""
    flow_publishing.attach(engine, app[STORE])
    await flow_publishing.publish(engine, app[STORE], flow_publishing.version_ttl(app[SETTINGS]))
    for key in (USSD_SERVICE, SMS_SERVICE, PUSH_SERVICE):
        if key in app:
            app[key].engine = engine


async def _drain_hops(app: web.Application) -> None:
    """Finish what was acknowledged: USSD hops, SMS turns, pushes in flight, including tasks
    that start while we wait (a hop waiting for its session lock)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHUTDOWN_DRAIN_SECONDS
    while True:
        tasks = [t for key in (USSD_SERVICE, SMS_SERVICE, PUSH_SERVICE) if key in app
                 for t in app[key].tasks if not t.done()]
        remaining = deadline - loop.time()
        if not tasks or remaining <= 0:
            return
        await asyncio.wait(tasks, timeout=remaining)


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    ok = await store.ping()
    return web.json_response({"status": "ok" if ok else "store unavailable", "store": store.name},
                             status=200 if ok else 503)
