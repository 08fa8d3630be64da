"""HTTP routes BDApps calls. They parse and check the payload, answer at once, and hand the
work to the services; they know nothing of flows."""
from __future__ import annotations

import structlog
from aiohttp import web

from ..store import StoreUnavailable
from .payloads import (ACK, TEMPORARY_ERROR, InvalidRequest, UssdReceive, auth_failed_body, decode,
                       invalid_body)
from .ussd import UssdService

log = structlog.get_logger("alap.routes")

USSD_SERVICE = web.AppKey("ussd_service", UssdService)
APP_ID = web.AppKey("bdapps_app_id", str)

_MO_OPERATIONS = ("mo-init", "mo-cont")


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


async def ussd_receive(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        mo = decode(raw, UssdReceive)
        if mo.ussdOperation not in _MO_OPERATIONS:
            raise InvalidRequest(f"ussdOperation must be mo-init or mo-cont, got {mo.ussdOperation[:20]!r}")
    except InvalidRequest as exc:
        log.info("ussd_rejected", reason=str(exc))
        return _json(invalid_body(str(exc)), 400)
    if mo.applicationId != request.app[APP_ID]:
        log.info("ussd_foreign_app", application_id=mo.applicationId[:40])
        return _json(auth_failed_body(mo.applicationId), 403)
    try:
        await request.app[USSD_SERVICE].receive(mo)
    except StoreUnavailable as exc:
        log.error("ussd_store_unavailable", error=str(exc))
        return _json(TEMPORARY_ERROR, 503)
    return _json(ACK)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/bdapps/ussd", ussd_receive)
