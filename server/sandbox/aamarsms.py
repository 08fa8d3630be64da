"""Contract fake of AamarSMS (docs/upstreams.md): GET /api, /otp, /smsstatus, /balance.

Answers with the API document's bodies and codes: 101/102 missing user/password, 105 wrong credentials,
103/104 empty recipient/text, 108 text longer than `max_parts`, 106 balance too low, 109 smsid
empty (also for an unknown smsid, which the API document does not cover). A bulk recipient that is not
8801XXXXXXXXX (the API document's format, no "+") gets `Status: 0, "Failed"`; the others are stored
and charged `cost_per_part` per part.

Sent messages are kept (GET /_control/messages); /smsstatus reports `status_sequence[n]` on the
n-th query, holding the last. The API document documents only Sent/Failed there, so the default is
("SENT",); pass e.g. ("SENT", "FAILED") to see a change. The send answer carries no smsid (as in
the API document); ids look like the API document's "910-17XXXXXXX" and are found through /_control/messages or
`app[AAMARSMS_STATE]`.

Faults (server/sandbox/faults.py) use the endpoint names "/api", "/otp", "/smsstatus", "/balance".
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Awaitable, Callable

from aiohttp import web

from server.sandbox.faults import FAULTS_KEY, add_control_routes, apply_fault, record_call

_MSISDN = re.compile(r"8801[3-9]\d{8}")
_MESSAGES = {
    100: "SMS send successfully.", 101: "Username empty.", 102: "Password empty.",
    103: "Recipient number empty.", 104: "Message text empty.", 105: "Invalid credential.",
    106: "Your Balance is not sufficient.", 107: "Reseller balance is not sufficient.",
    108: "Message text is too long.", 109: "smsid empty",
}


@dataclass
class FakeSms:
    smsid: str
    to: str
    text: str
    sender: str
    parts: int
    statuses: tuple[str, ...]
    queries: int = 0

    @property
    def status(self) -> str:
        return self.statuses[min(self.queries, len(self.statuses) - 1)]


@dataclass
class AamarSmsState:
    user: str
    password: str
    balance: Decimal
    cost_per_part: Decimal
    status_sequence: tuple[str, ...]
    max_parts: int
    messages: dict[str, FakeSms] = field(default_factory=dict)
    next_id: int = 910


AAMARSMS_STATE = web.AppKey("aamarsms_state", AamarSmsState)


def _parts(text: str) -> int:
    # Same rule as the client, kept here so the fake imports nothing of production code.
    if all(ord(c) < 128 for c in text):
        return 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def _error(code: int) -> web.Response:
    return web.json_response({"success": 0, "message": _MESSAGES[code], "response_code": code})


def _auth_error(state: AamarSmsState, query: Any) -> web.Response | None:
    if not query.get("user"):
        return _error(101)
    if not query.get("password"):
        return _error(102)
    if (query["user"], query["password"]) != (state.user, state.password):
        return _error(105)
    return None


def _endpoint(name: str, handler: Callable[[web.Request, AamarSmsState], Awaitable[web.Response]]):
    """Record the call, run any injected fault, check credentials, then answer."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        await record_call(request, name)
        faulted = await apply_fault(request.app[FAULTS_KEY], name)
        if faulted is not None:
            return faulted
        state = request.app[AAMARSMS_STATE]
        return _auth_error(state, request.query) or await handler(request, state)
    return wrapped


def _validate_send(state: AamarSmsState, query: Any) -> web.Response | None:
    if not query.get("to"):
        return _error(103)
    if not query.get("text"):
        return _error(104)
    if _parts(query["text"]) > state.max_parts:
        return _error(108)
    return None


def _store(state: AamarSmsState, to: str, text: str, sender: str) -> FakeSms:
    sms = FakeSms(f"{state.next_id}-{to[3:]}", to, text, sender, _parts(text), state.status_sequence)
    state.next_id += 1
    state.messages[sms.smsid] = sms
    return sms


def _charge(state: AamarSmsState, parts: int) -> Decimal | None:
    cost = state.cost_per_part * parts
    if cost > state.balance:
        return None
    state.balance -= cost
    return cost


async def _api(request: web.Request, state: AamarSmsState) -> web.Response:
    q = request.query
    if (bad := _validate_send(state, q)) is not None:
        return bad
    numbers = [n.strip() for n in q["to"].split(",") if n.strip()]
    valid = [n for n in numbers if _MSISDN.fullmatch(n)]
    cost = _charge(state, _parts(q["text"]) * len(valid))
    if cost is None:
        return _error(106)
    for number in valid:
        _store(state, number, q["text"], q.get("from", ""))
    return web.json_response({
        "success": 1 if valid else 0,
        "message": _MESSAGES[100] if valid else "SMS send failed.",
        "response_code": 100,
        "campaign_cost": float(cost),
        "delivery_status": [
            {"MSISDN": n, "Status": 1, "StatusText": "Sent"} if n in valid
            else {"MSISDN": n, "Status": 0, "StatusText": "Failed"}
            for n in numbers
        ],
    })


async def _otp(request: web.Request, state: AamarSmsState) -> web.Response:
    q = request.query
    if (bad := _validate_send(state, q)) is not None:
        return bad
    if not _MSISDN.fullmatch(q["to"]):
        return web.json_response({"success": 0, "message": "SMS send failed.", "response_code": 100,
                                  "campaign_cost": 0, "status": "Failed"})
    cost = _charge(state, _parts(q["text"]))
    if cost is None:
        return _error(106)
    _store(state, q["to"], q["text"], q.get("from", ""))
    return web.json_response({"success": 1, "message": _MESSAGES[100], "response_code": 100,
                              "campaign_cost": float(cost), "status": "Delivered"})


async def _smsstatus(request: web.Request, state: AamarSmsState) -> web.Response:
    sms = state.messages.get(request.query.get("smsid", ""))
    if sms is None:
        return _error(109)
    status = sms.status
    sms.queries += 1
    return web.json_response({"success": 1, "response_code": 100,
                              "message": "SMS send successfully", "STATUS": status})


async def _balance(request: web.Request, state: AamarSmsState) -> web.Response:
    if state.balance <= 0:
        return web.json_response({"message": "No Credits available", "response_code": 106})
    return web.json_response({"message": "Active Balance Available", "response_code": 110,
                              "AVAILABLE BALANCE =": f"{state.balance:.5f}"})


async def _messages(request: web.Request) -> web.Response:
    sms = request.app[AAMARSMS_STATE].messages.values()
    return web.json_response([{**asdict(s), "status": s.status} for s in sms])


def create_aamarsms_fake(user: str = "sandbox", password: str = "sandbox-pass", *,
                         balance: Decimal | str = "100", cost_per_part: Decimal | str = "0.25",
                         status_sequence: tuple[str, ...] = ("SENT",), max_parts: int = 10) -> web.Application:
    app = web.Application()
    add_control_routes(app)
    app[AAMARSMS_STATE] = AamarSmsState(user, password, Decimal(balance), Decimal(cost_per_part),
                                        tuple(status_sequence), max_parts)
    for name, handler in (("/api", _api), ("/otp", _otp), ("/smsstatus", _smsstatus), ("/balance", _balance)):
        app.router.add_get(name, _endpoint(name, handler))
    app.router.add_get("/_control/messages", _messages)
    return app
