"""Contract fake of DiniSoft (docs/upstreams.md): GET /sendtext, /getstatus and the balance page
(/login/sms/smsConfiguration/smsClientBalance.jsp?client=..., plain text "10.000000").

sendtext answers the API document's codes: 109 apikey missing or unknown, 108 secretkey wrong or
missing, 114 no messageContent, 5400 caller IP not in `allowed_ips` (when given), 1 "request
failed" for a toUser that is not 8801XXXXXXXXX, an empty callerID or too little balance (the
API document has no specific code for those), else 0 ACCEPTD with a Message_ID counting from 194234.
Each part costs `cost_per_part`.

getstatus: 109 apikey missing, -42 apikey unknown, 108 secretkey wrong, 114 messageid missing,
unknown, or already answered with a final state (the API document: "query has been done already").
The n-th query of a message reports `status_sequence[n]` (holding the last), default
("PENDING", "DELIVRD"): pending first, delivered on the next query. Known states: PENDING (2),
SENT (4), DELIVRD (0), FAILED (1 REJECTD).

Faults (server/sandbox/faults.py) use the endpoint names "/sendtext", "/getstatus", "/balance".
Sent messages: GET /_control/messages or `app[DINISOFT_STATE]`.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Awaitable, Callable

from aiohttp import web

from server.sandbox.faults import FAULTS_KEY, add_control_routes, apply_fault, record_call

BALANCE_PATH = "/login/sms/smsConfiguration/smsClientBalance.jsp"
_MSISDN = re.compile(r"8801[3-9]\d{8}")
_CODES = {"DELIVRD": "0", "FAILED": "1", "PENDING": "2", "SENT": "4"}


@dataclass
class FakeSms:
    message_id: str
    to: str
    text: str
    caller_id: str
    parts: int
    statuses: tuple[str, ...]
    queries: int = 0
    closed: bool = False  # a final state was reported: further queries get 114

    @property
    def status(self) -> str:
        return self.statuses[min(self.queries, len(self.statuses) - 1)]


@dataclass
class DiniSoftState:
    api_key: str
    secret_key: str
    client: str
    balance: Decimal
    cost_per_part: Decimal
    status_sequence: tuple[str, ...]
    allowed_ips: frozenset[str] | None
    messages: dict[str, FakeSms] = field(default_factory=dict)
    next_id: int = 194234


DINISOFT_STATE = web.AppKey("dinisoft_state", DiniSoftState)


def _parts(text: str) -> int:
    # Same rule as the client, kept here so the fake imports nothing of production code.
    if all(ord(c) < 128 for c in text):
        return 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def _rejected(status: str, **extra: str) -> web.Response:
    return web.json_response({"Status": status, "Text": "REJECTD", **extra})


Handler = Callable[[web.Request, DiniSoftState], Awaitable[web.StreamResponse]]


def _endpoint(name: str, handler: Handler):
    """Record the call and run any injected fault before the fake answers."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        await record_call(request, name)
        faulted = await apply_fault(request.app[FAULTS_KEY], name)
        if faulted is not None:
            return faulted
        return await handler(request, request.app[DINISOFT_STATE])
    return wrapped


async def _sendtext(request: web.Request, state: DiniSoftState) -> web.StreamResponse:
    q = request.query
    if q.get("apikey") != state.api_key:
        return _rejected("109")
    if q.get("secretkey") != state.secret_key:
        return _rejected("108")
    if state.allowed_ips is not None and request.remote not in state.allowed_ips:
        return _rejected("5400", Message_ID="")
    text = q.get("messageContent", "")
    if not text:
        return _rejected("114")
    to, caller_id = q.get("toUser", ""), q.get("callerID", "")
    cost = state.cost_per_part * _parts(text)
    if not _MSISDN.fullmatch(to) or not caller_id or cost > state.balance:
        return _rejected("1")
    state.balance -= cost
    sms = FakeSms(str(state.next_id), to, text, caller_id, _parts(text), state.status_sequence)
    state.next_id += 1
    state.messages[sms.message_id] = sms
    return web.json_response({"Status": "0", "Text": "ACCEPTD", "Message_ID": sms.message_id})


async def _getstatus(request: web.Request, state: DiniSoftState) -> web.StreamResponse:
    q = request.query
    if not q.get("apikey"):
        return _rejected("109")
    if q["apikey"] != state.api_key:
        return _rejected("-42")
    if q.get("secretkey") != state.secret_key:
        return _rejected("108")
    sms = state.messages.get(q.get("messageid", ""))
    if sms is None or sms.closed:
        return _rejected("114")
    status = sms.status
    sms.queries += 1
    code = _CODES.get(status, "1")
    if code == "0":
        sms.closed = True
        return web.json_response({"Status": "0", "Text": "DELIVRD", "Message_ID": sms.message_id,
                                  "Delivery Time": str(int(time.time() * 1000))})
    if code == "1":
        sms.closed = True
        return _rejected("1")
    return web.json_response({"Status": code, "Text": status})


async def _balance(request: web.Request, state: DiniSoftState) -> web.StreamResponse:
    if request.query.get("client") != state.client:
        return web.Response(text="Invalid Client")  # undocumented; any non-number will do
    return web.Response(text=f"{state.balance:.6f}")


async def _messages(request: web.Request) -> web.Response:
    sms = request.app[DINISOFT_STATE].messages.values()
    return web.json_response([{**asdict(s), "status": s.status} for s in sms])


def create_dinisoft_fake(api_key: str = "sandbox-key", secret_key: str = "sandbox-secret", *,
                         client: str = "sandbox", balance: Decimal | str = "10",
                         cost_per_part: Decimal | str = "0.25",
                         status_sequence: tuple[str, ...] = ("PENDING", "DELIVRD"),
                         allowed_ips: tuple[str, ...] | None = None) -> web.Application:
    app = web.Application()
    add_control_routes(app)
    app[DINISOFT_STATE] = DiniSoftState(api_key, secret_key, client, Decimal(balance), Decimal(cost_per_part),
                                        tuple(status_sequence),
                                        frozenset(allowed_ips) if allowed_ips is not None else None)
    app.router.add_get("/sendtext", _endpoint("/sendtext", _sendtext))
    app.router.add_get("/getstatus", _endpoint("/getstatus", _getstatus))
    app.router.add_get(BALANCE_PATH, _endpoint("/balance", _balance))
    app.router.add_get("/_control/messages", _messages)
    return app
