"""A fake BDApps gateway: the USSD side of a subscriber's phone plus `/ussd/send` and `/sms/send`.

It checks `/ussd/send` like the real one (E1313 on wrong credentials, E1312 on missing
fields), records every screen, and offers a "phone" API that `alap sim`, the web simulator,
tests and the benchmark use to dial and reply through the server's real callback route:

    POST /phone/dial   {"address": "tel:8801812345678", "code": "*213#"}  -> the first screen
    POST /phone/reply  {"sessionId": "...", "message": "1"}               -> the next screen
    POST /phone/sms    {"address": "tel:8801812345678", "message": "HELP"} -> the SMS reply

Each USSD answer is the `/ussd/send` body the server sent for that session, plus `sessionId`;
the SMS answer is the reply the server sent to that address through `/sms/send`.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from .caas import add_caas_routes
from .faults import FAULTS_KEY, add_control_routes, apply_fault, record_call

class Callback:
    """Where the fake delivers MO requests; mutable so a test can start both servers first."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def sms_url(self) -> str:
        """The app's MO SMS route, next to its USSD route."""
        return self.url.rsplit("/ussd", 1)[0] + "/sms"


CALLBACK = web.AppKey("callback", Callback)
SCREENS = web.AppKey("screens", dict)
HTTP = web.AppKey("gateway_http", aiohttp.ClientSession)
CREDENTIALS = web.AppKey("credentials", tuple)

_REQUIRED = ("applicationId", "password", "sessionId", "ussdOperation", "destinationAddress", "message")
_ids = itertools.count(int(time.time() * 1000) % 10**9)


def _status(code: str, detail: str, **extra: Any) -> web.Response:
    return web.json_response({"statusCode": code, "statusDetail": detail, **extra})


async def _checked_body(request: web.Request, endpoint: str) -> dict[str, Any] | web.StreamResponse:
    """Record the call, apply any injected fault, then check the JSON body and credentials
    like BDApps does (E1312, E1313). Returns the body, or the answer to send instead."""
    entry = await record_call(request, endpoint)
    injected = await apply_fault(request.app[FAULTS_KEY], endpoint)
    if injected is not None:
        return injected
    body = entry.get("json")
    if not isinstance(body, dict):
        return _status("E1312", "Request is Invalid. Body is not a JSON object")
    app_id, password = request.app[CREDENTIALS]
    if body.get("applicationId") != app_id or body.get("password") != password:
        return _status("E1313", "Authentication failed.")
    return body


async def ussd_send(request: web.Request) -> web.StreamResponse:
    body = await _checked_body(request, "/ussd/send")
    if not isinstance(body, dict):
        return body
    missing = [f for f in _REQUIRED if not isinstance(body.get(f), str)]
    if missing:
        return _status("E1312", f"Request is Invalid. Missing {', '.join(missing)}")
    if body["ussdOperation"] not in ("mt-cont", "mt-fin", "mt-init"):
        return _status("E1312", "Request is Invalid. Bad ussdOperation")
    screen = {**body, "receivedAt": time.time()}
    screen.pop("password", None)
    request.app[SCREENS][body["sessionId"]].put_nowait(screen)
    return _status("S1000", "Success", requestId=str(next(_ids)), version="1.0")


# --- /sms/send --------------------------------------------------------------------------------
# Checked like the real gateway (E1313 credentials, E1312 missing or ill-typed fields, E1325 an
# address without "tel:" per destination, E1341 when every destination failed); every accepted
# SMS is kept in `app[SENT_SMS]` (GET /_control/sms) and logged as "SMS to <address>: <text>".
# Throttling and errors are injected with faults on the endpoint "/sms/send", e.g.
#     Fault(endpoint="/sms/send", mode="body", json=sms_error("E1318"), times=1)

SENT_SMS = web.AppKey("sent_sms", list)
_SMS_ENCODINGS = ("0", "16", "240", "245")
_sms_log = structlog.get_logger("alap.sandbox.bdapps")
_SMS_DETAILS = {
    "E1318": "Transaction limit per second has exceeded. Please throttle requests not to exceed the "
             "transaction limit.",
    "E1319": "Transaction limit for today is exceeded. Please try again tomorrow.",
    "E1326": "Insufficient balance.",
    "E1602": "Message delivery failed. Please retry",
    "E1603": "Temporary System Error occurred while delivering your request.",
    "E1317": "MSISDN in request is invalid or not allowed.",
    "E1325": 'Format of the address is invalid. Expected format is "tel: 8801812345678"',
    "E1341": "Request failed. Errors occurred while sending the request for all the destinations.",
}


def sms_error(code: str, detail: str | None = None) -> dict[str, Any]:
    """A BDApps error answer for `/sms/send`, for fault injection (mode="body")."""
    return {"statusCode": code, "statusDetail": detail or _SMS_DETAILS.get(code, "Error"), "version": "1.0"}


def sent_sms(app: web.Application) -> list[dict[str, Any]]:
    """Every SMS the fake accepted, oldest first: to, message, encoding, messageId, ..."""
    return app[SENT_SMS]


async def sms_send(request: web.Request) -> web.StreamResponse:
    # Like a real gateway, a request that arrived is carried out even if the client hangs up
    # while waiting (a sender killed mid-request: tests/broadcast/test_crash_resume.py).
    return await asyncio.shield(_sms_send(request))


async def _sms_send(request: web.Request) -> web.StreamResponse:
    body = await _checked_body(request, "/sms/send")
    if not isinstance(body, dict):
        return body
    addresses = body.get("destinationAddresses")
    if not isinstance(body.get("message"), str) or not body["message"]:
        return _status("E1312", "Request is Invalid. Missing message")
    if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) for a in addresses):
        return _status("E1312", "Request is Invalid. destinationAddresses must be a non-empty list of strings")
    encoding = str(body.get("encoding", "0"))
    if encoding not in _SMS_ENCODINGS:
        return _status("E1312", "Request is Invalid. Bad encoding")
    if str(body.get("deliveryStatusRequest", "0")) not in ("0", "1"):
        return _status("E1312", "Request is Invalid. Bad deliveryStatusRequest")
    stamp = time.strftime("%Y%m%d%H%M%S")
    responses = []
    for address in addresses:
        shown = "tel: " + address[4:] if address[:4].lower() == "tel:" else address  # the API document's "tel: 880..."
        if address[:4].lower() != "tel:" or not address[4:].strip():
            responses.append({"statusCode": "E1325", "timeStamp": stamp, "address": shown,
                              "statusDetail": _SMS_DETAILS["E1325"]})
            continue
        message_id = str(next(_ids))
        responses.append({"statusCode": "S1000", "timeStamp": stamp, "address": shown,
                          "statusDetail": "Request was successfully processed", "messageId": message_id})
        sms = {"to": address, "message": body["message"], "encoding": encoding, "messageId": message_id,
               "sourceAddress": body.get("sourceAddress"),
               "deliveryStatusRequest": str(body.get("deliveryStatusRequest", "0")), "receivedAt": time.time()}
        request.app[SENT_SMS].append(sms)
        _sms_log.info(f"SMS to {address}: {body['message']}", encoding=encoding, message_id=message_id)
    accepted = [r for r in responses if r["statusCode"] == "S1000"]
    code = "S1000" if accepted else "E1341"
    request_id = accepted[0]["messageId"] if accepted else str(next(_ids))
    detail = "Request was successfully processed" if accepted else _SMS_DETAILS["E1341"]
    return _status(code, detail, requestId=request_id, destinationResponses=responses, version="1.0")


async def _list_sms(request: web.Request) -> web.Response:
    return web.json_response(request.app[SENT_SMS])


async def _callback(app: web.Application, payload: dict[str, Any], url: str | None = None) -> None:
    async with app[HTTP].post(url or app[CALLBACK].url, json=payload) as response:
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


async def phone_sms(request: web.Request) -> web.Response:
    data = await request.json()
    address = str(data.get("address") or "tel:8801812345678")
    message = str(data.get("message", ""))
    app = request.app
    seen = len(app[SENT_SMS])
    await _callback(app, {"applicationId": app[CREDENTIALS][0], "sourceAddress": address, "message": message,
                          "requestId": str(next(_ids)), "encoding": "0" if message.isascii() else "16",
                          "version": "1.0"}, app[CALLBACK].sms_url)
    wanted = "".join(address.split())
    deadline = time.monotonic() + float(data.get("timeout", 10))
    while time.monotonic() < deadline:
        for sms in app[SENT_SMS][seen:]:
            if "".join(str(sms.get("to", "")).split()) == wanted:
                return web.json_response({**sms, "address": address})
        await asyncio.sleep(0.01)
    raise web.HTTPGatewayTimeout(text='{"error": "no SMS reply from the server in time"}',
                                 content_type="application/json")


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
    add_caas_routes(app, app_id, password)  # BDApps serves CAAS under the same base URL
    app.cleanup_ctx.append(_http_ctx)
    app.router.add_post("/ussd/send", ussd_send)
    app[SENT_SMS] = []
    app.router.add_post("/sms/send", sms_send)
    app.router.add_get("/_control/sms", _list_sms)
    app.router.add_post("/phone/dial", phone_dial)
    app.router.add_post("/phone/reply", phone_reply)
    app.router.add_post("/phone/sms", phone_sms)
    return app
