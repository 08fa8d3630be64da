"""A fake BDApps gateway: the USSD side of a subscriber's phone plus `/ussd/send`.

It checks `/ussd/send` like the real one (E1313 on wrong credentials, E1312 on missing
fields), records every screen, and offers a "phone" API that `alap sim`, the web simulator,
tests and the benchmark use to dial and reply through the server's real callback route:

    POST /phone/dial   {"address": "tel:8801812345678", "code": "*213#"}  -> the first screen
    POST /phone/reply  {"sessionId": "...", "message": "1"}               -> the next screen

Each answer is the `/ussd/send` body the server sent for that session, plus `sessionId`.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any

import aiohttp
from aiohttp import web

from .faults import FAULTS_KEY, add_control_routes, apply_fault, record_call

class Callback:
    """Where the fake delivers MO requests; mutable so a test can start both servers first."""

    def __init__(self, url: str) -> None:
        self.url = url


CALLBACK = web.AppKey("callback", Callback)
SCREENS = web.AppKey("screens", dict)
HTTP = web.AppKey("gateway_http", aiohttp.ClientSession)
CREDENTIALS = web.AppKey("credentials", tuple)

_REQUIRED = ("applicationId", "password", "sessionId", "ussdOperation", "destinationAddress", "message")
_ids = itertools.count(int(time.time() * 1000) % 10**9)


def _status(code: str, detail: str, **extra: Any) -> web.Response:
    return web.json_response({"statusCode": code, "statusDetail": detail, **extra})


async def ussd_send(request: web.Request) -> web.Response:
    entry = await record_call(request, "/ussd/send")
    injected = await apply_fault(request.app[FAULTS_KEY], "/ussd/send")
    if injected is not None:
        return injected  # type: ignore[return-value]
    body = entry.get("json")
    if not isinstance(body, dict):
        return _status("E1312", "Request is Invalid. Body is not a JSON object")
    app_id, password = request.app[CREDENTIALS]
    if body.get("applicationId") != app_id or body.get("password") != password:
        return _status("E1313", "Authentication failed.")
    missing = [f for f in _REQUIRED if not isinstance(body.get(f), str)]
    if missing:
        return _status("E1312", f"Request is Invalid. Missing {', '.join(missing)}")
    if body["ussdOperation"] not in ("mt-cont", "mt-fin", "mt-init"):
        return _status("E1312", "Request is Invalid. Bad ussdOperation")
    screen = {**body, "receivedAt": time.time()}
    screen.pop("password", None)
    request.app[SCREENS][body["sessionId"]].put_nowait(screen)
    return _status("S1000", "Success", requestId=str(next(_ids)), version="1.0")


async def _callback(app: web.Application, payload: dict[str, Any]) -> None:
    async with app[HTTP].post(app[CALLBACK].url, json=payload) as response:
        answer = await response.json(content_type=None)
        if response.status != 200 or answer.get("statusCode") != "S1000":
            raise web.HTTPBadGateway(text=json.dumps({"callbackStatus": response.status, "answer": answer}),
                                     content_type="application/json")


async def _next_screen(app: web.Application, session_id: str, timeout: float) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(app[SCREENS][session_id].get(), timeout)
    except asyncio.TimeoutError:
        raise web.HTTPGatewayTimeout(text='{"error": "no screen from the server in time"}',
                                     content_type="application/json") from None


def _mo(app: web.Application, session_id: str, address: str, operation: str, message: str,
        encoding: str = "440") -> dict[str, Any]:
    return {
        "applicationId": app[CREDENTIALS][0], "sessionId": session_id, "ussdOperation": operation,
        "sourceAddress": address, "message": message, "encoding": encoding,
        "requestId": str(next(_ids)), "version": "1.0",
    }


async def phone_dial(request: web.Request) -> web.Response:
    data = await request.json()
    session_id = str(data.get("sessionId") or next(_ids))
    address = str(data.get("address") or "tel:8801812345678")
    message = str(data.get("code") or "*213#")
    await _callback(request.app, _mo(request.app, session_id, address, "mo-init", message))
    screen = await _next_screen(request.app, session_id, float(data.get("timeout", 10)))
    return web.json_response({**screen, "sessionId": session_id, "address": address})


async def phone_reply(request: web.Request) -> web.Response:
    data = await request.json()
    session_id = str(data["sessionId"])
    address = str(data.get("address") or "tel:8801812345678")
    message = str(data.get("message", ""))
    encoding = "440" if message.isascii() else "16"
    await _callback(request.app, _mo(request.app, session_id, address, "mo-cont", message, encoding))
    screen = await _next_screen(request.app, session_id, float(data.get("timeout", 10)))
    return web.json_response({**screen, "sessionId": session_id, "address": address})


async def _http_ctx(app: web.Application):
    app[HTTP] = aiohttp.ClientSession()
    yield
    await app[HTTP].close()


def create_bdapps_fake(callback_url: str, app_id: str = "APP_000001", password: str = "sandbox") -> web.Application:
    app = web.Application()
    app[CALLBACK] = Callback(callback_url)
    app[CREDENTIALS] = (app_id, password)
    app[SCREENS] = defaultdict(asyncio.Queue)
    add_control_routes(app)
    app.cleanup_ctx.append(_http_ctx)
    app.router.add_post("/ussd/send", ussd_send)
    app.router.add_post("/phone/dial", phone_dial)
    app.router.add_post("/phone/reply", phone_reply)
    return app
