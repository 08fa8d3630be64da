"""HTTP routes BDApps calls. They check the caller, parse and check the payload, answer at
once, and hand the work to the services; they know nothing of flows.

The caller check and the callback count live in the routes themselves (`_bdapps_route`)
rather than in aiohttp middlewares, which would run on every request of every route and cost
each hop two more coroutine layers.
A path under /bdapps/ that no route serves is answered and counted by `_unmatched`."""
from __future__ import annotations

from typing import Awaitable, Callable

import msgspec
import structlog
from aiohttp import web

from .. import metrics
from ..store import ForeignSession, StoreUnavailable
from .admission import Overloaded
from .callers import refusal
from .payloads import (ACK, TEMPORARY_ERROR, DeliveryReport, InvalidRequest, MoReceive, SmsReceive, UssdReceive,
                       auth_failed_body, decode, invalid_body)
from .sms import SmsService
from .ussd import UssdService

log = structlog.get_logger("alap.routes")

USSD_SERVICE = web.AppKey("ussd_service", UssdService)
SMS_SERVICE = web.AppKey("sms_service", SmsService)
APP_ID = web.AppKey("bdapps_app_id", str)
# (provider, message id, status text) -> known?  The outbound sender's delivery-report hook.
ReportFn = Callable[[str, str, str], Awaitable[bool]]
DELIVERY_REPORTS = web.AppKey("delivery_reports", object)

_MO_OPERATIONS = ("mo-init", "mo-cont")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _parse(raw: bytes, kind: type[msgspec.Struct], app_id: str) -> msgspec.Struct | web.Response:
    """The payload, or the BDApps-style refusal: E1312 (400) for a bad body, E1313 (403) for a
    foreign applicationId."""
    try:
        payload = decode(raw, kind)
        if isinstance(payload, UssdReceive) and payload.ussdOperation not in _MO_OPERATIONS:
            raise InvalidRequest(f"ussdOperation must be mo-init or mo-cont, got {payload.ussdOperation[:20]!r}")
    except InvalidRequest as exc:
        log.info("callback_rejected", kind=kind.__name__, reason=str(exc))
        return _json(invalid_body(str(exc)), 400)
    given = getattr(payload, "applicationId", None)
    if given is not None and given != app_id:
        log.info("callback_foreign_app", kind=kind.__name__, application_id=given[:40])
        return _json(auth_failed_body(given), 403)
    return payload


def _mo_route(kind: type[MoReceive], service: web.AppKey) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A mobile-originated callback (USSD or SMS): check, claim in the store, ack at once; the
    service carries on in the background. Store down: 503 E1603, which BDApps retries."""

    async def receive(request: web.Request) -> web.Response:
        mo = _parse(await request.read(), kind, request.app[APP_ID])
        if isinstance(mo, web.Response):
            return mo
        try:
            await request.app[service].receive(mo)
        except Overloaded:  # counted and logged (once a second) by the gate: no line per refusal
            return _json(TEMPORARY_ERROR, 503)
        except StoreUnavailable as exc:
            log.error("callback_store_unavailable", kind=kind.__name__, error=str(exc))
            return _json(TEMPORARY_ERROR, 503)
        except ForeignSession:
            return _json(invalid_body("sourceAddress is not the subscriber of this session"), 400)
        return _json(ACK)

    return receive


async def sms_report(request: web.Request) -> web.Response:
    report = _parse(await request.read(), DeliveryReport, request.app[APP_ID])
    if isinstance(report, web.Response):
        return report
    on_report: ReportFn = request.app[DELIVERY_REPORTS]  # type: ignore[assignment]
    try:
        known = await on_report("bdapps", report.requestId, report.deliveryStatus)
    except StoreUnavailable as exc:
        log.error("sms_report_store_unavailable", error=str(exc))
        return _json(TEMPORARY_ERROR, 503)
    if not known:  # acknowledged anyway: the gateway must not keep redelivering it
        log.warning("sms_report_unknown_message", request_id=report.requestId, status=report.deliveryStatus)
    return _json(ACK)


def _bdapps_route(route: str, handler: Handler) -> Handler:
    """`handler` behind the caller allow-list (server/bdapps/callers.py), every answer counted
    by route template and HTTP status."""
    async def handle(request: web.Request) -> web.StreamResponse:
        status = 500
        try:
            response = refusal(request, route) or await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # e.g. 413 for a body over client_max_size
            status = exc.status
            raise
        finally:
            metrics.callbacks(route, str(status)).inc()

    return handle


_ROUTES = {
    "/bdapps/ussd": _mo_route(UssdReceive, USSD_SERVICE),
    "/bdapps/sms": _mo_route(SmsReceive, SMS_SERVICE),
    "/bdapps/sms/report": sms_report,
}


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """Any other path or method under /bdapps/ (a scan of made-up paths): 404, or 405 for a
    route's path with a method other than POST. One `unmatched` label for all of them."""
    if request.path in _ROUTES:
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    raise web.HTTPNotFound()


def add_routes(app: web.Application) -> None:
    for path, handler in _ROUTES.items():
        app.router.add_post(path, _bdapps_route(path, handler))
    app.router.add_route("*", "/bdapps/{tail:.*}", _bdapps_route(metrics.UNMATCHED_ROUTE, _unmatched))
