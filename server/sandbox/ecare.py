"""Contract fake of the eCare recharge API (docs/upstreams.md), as a small aiohttp app.

Serves `recharge_api_thirdparty.php` at the API document's path (GET query or POST form), with the
services MRC, MRCSTATUS, BLCK and OFFERPACK, answering one JSON object per call with the
API document's field names. Fault endpoints (faults.py) are the service names: "MRC", "MRCSTATUS",
"BLCK", "OFFERPACK".

State, because money depends on it:
- a wallet (MAIN_BALANCE 3,500.00) that each accepted recharge debits and a FAILED final
  status refunds;
- every refid ever received: reusing one answers DUPLICATE, whatever the other fields;
- per recharge, the statuses MRCSTATUS walks through, one per poll, the last one sticking
  (default PENDING -> PROCESSING -> SUCCESS).

Control routes (besides /_control/faults and /_control/calls):
    POST /_control/ecare/script       {"refid": "...", "statuses": ["PROCESSING", "FAILED"]}
    POST /_control/ecare/default      {"statuses": ["PENDING", "SUCCESS"]}
    POST /_control/ecare/wallet       {"main_balance": "100.00"}
    POST /_control/ecare/maintenance  {"on": true}
    GET  /_control/ecare/recharges    -> [{"refid", "number", "amount", "status", ...}]
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from server.sandbox.faults import FAULTS_KEY, add_control_routes, apply_fault, record_call

ECARE_PATH = "/myportal/api/rechargeapi/recharge_api_thirdparty.php"
POLL_STATUSES = ("PENDING", "PROCESSING", "SUCCESS", "FAILED")
OPERATORS = {"3": "Grameenphone", "7": "Grameenphone", "4": "Banglalink", "9": "Banglalink",
             "8": "Robi", "6": "Airtel", "5": "Teletalk"}
NUMBER_TYPES = {"1", "2", "3", "4"}

MAINTENANCE = {"STATUS": "MAINTENANCE", "MESSAGE": "Server Maintenance Mode Running, Try After Sometime"}

OFFER_PACKS: list[dict[str, str]] = [
    {"OFFER_ID": "GP-D7-2GB", "OPERATOR": "7", "NUMBER_TYPE": "1", "TITLE": "2GB Internet",
     "AMOUNT": "98", "VALIDITY": "7 Days", "DETAILS": "2GB internet for 7 days"},
    {"OFFER_ID": "GP-V30-300", "OPERATOR": "7", "NUMBER_TYPE": "1", "TITLE": "300 Minutes",
     "AMOUNT": "348", "VALIDITY": "30 Days", "DETAILS": "300 minutes to any local number"},
    {"OFFER_ID": "SKITTO-30-12GB", "OPERATOR": "7", "NUMBER_TYPE": "3", "TITLE": "12GB Skitto Pack",
     "AMOUNT": "299", "VALIDITY": "30 Days", "DETAILS": "12GB internet, Skitto numbers only"},
    {"OFFER_ID": "BL-D3-1.5GB", "OPERATOR": "9", "NUMBER_TYPE": "1", "TITLE": "1.5GB Internet",
     "AMOUNT": "57", "VALIDITY": "3 Days", "DETAILS": "1.5GB internet for 3 days"},
    {"OFFER_ID": "BL-C30-10GB", "OPERATOR": "9", "NUMBER_TYPE": "4", "TITLE": "10GB + 200 Min",
     "AMOUNT": "498", "VALIDITY": "30 Days", "DETAILS": "10GB internet and 200 minutes (Amar Offer)"},
    {"OFFER_ID": "ROBI-D3-1GB", "OPERATOR": "8", "NUMBER_TYPE": "1", "TITLE": "1GB Internet",
     "AMOUNT": "48", "VALIDITY": "3 Days", "DETAILS": "1GB internet for 3 days"},
    {"OFFER_ID": "ROBI-D30-40GB", "OPERATOR": "8", "NUMBER_TYPE": "1", "TITLE": "40GB Internet",
     "AMOUNT": "499", "VALIDITY": "30 Days", "DETAILS": "40GB internet for 30 days"},
    {"OFFER_ID": "AT-D7-3GB", "OPERATOR": "6", "NUMBER_TYPE": "1", "TITLE": "3GB Internet",
     "AMOUNT": "118", "VALIDITY": "7 Days", "DETAILS": "3GB internet for 7 days"},
    {"OFFER_ID": "AT-V7-100", "OPERATOR": "6", "NUMBER_TYPE": "1", "TITLE": "100 Minutes",
     "AMOUNT": "89", "VALIDITY": "7 Days", "DETAILS": "100 minutes to any local number"},
    {"OFFER_ID": "TT-D30-10GB", "OPERATOR": "5", "NUMBER_TYPE": "1", "TITLE": "10GB Internet",
     "AMOUNT": "198", "VALIDITY": "30 Days", "DETAILS": "10GB internet for 30 days"},
]


@dataclass
class Recharge:
    refid: str
    operator: str
    number_type: str
    number: str
    amount: Decimal
    trxid: str
    upcoming: list[str]
    status: str = "RECEIVED"
    refunded: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"refid": self.refid, "operator": self.operator, "number_type": self.number_type,
                "number": self.number, "amount": str(self.amount), "trxid": self.trxid,
                "status": self.status, "refunded": self.refunded}


@dataclass
class ECareState:
    access_id: str
    access_pass: str
    main_balance: Decimal = Decimal("3500.00")
    stock_balance: Decimal = Decimal("30.00")
    default_statuses: list[str] = field(default_factory=lambda: ["PENDING", "PROCESSING", "SUCCESS"])
    scripts: dict[str, list[str]] = field(default_factory=dict)
    recharges: dict[str, Recharge] = field(default_factory=dict)
    maintenance: bool = False
    next_trx: int = 2336355464


STATE_KEY = web.AppKey("ecare_state", ECareState)


def _mrc(state: ECareState, p: dict[str, str]) -> dict[str, Any]:
    failed = {"STATUS": "FAILED", "RECHARGE_STATUS": "FAILED", "MESSAGE": "Recharge Request Failed."}
    refid = p.get("refid", "").strip()
    if not refid:
        return failed
    if refid in state.recharges:  # checked first: a reused refid never moves money again
        return {"STATUS": "FAILED", "RECHARGE_STATUS": "DUPLICATE",
                "MESSAGE": "Duplicate Reference or Duplicate Recharge Request"}
    number, operator, number_type = p.get("number", ""), p.get("operator", ""), p.get("number_type", "")
    try:
        amount = Decimal(p.get("amount", ""))
    except InvalidOperation:
        return failed
    if (not re.fullmatch(r"01[3-9]\d{8}", number) or operator not in OPERATORS
            or number_type not in NUMBER_TYPES or amount != amount.to_integral_value()
            or not Decimal(10) <= amount <= Decimal(10000)):
        return failed
    if amount > state.main_balance:
        return {"STATUS": "FAILED", "RECHARGE_STATUS": "LOWBALANCE", "MESSAGE": "Insufficient Wallet Balance"}
    state.main_balance -= amount
    trxid = f"MTS{state.next_trx}"
    state.next_trx += 1
    upcoming = list(state.scripts.pop(refid, state.default_statuses))
    state.recharges[refid] = Recharge(refid, operator, number_type, number, amount, trxid, upcoming)
    return {"STATUS": "OK", "RECHARGE_STATUS": "RECEIVED", "OPERATOR": operator, "NUMBER": number,
            "AMOUNT": str(int(amount)), "TRXID": trxid, "MESSAGE": "Your Mobile Recharge Request Received."}


def _mrc_status(state: ECareState, p: dict[str, str]) -> dict[str, Any]:
    recharge = state.recharges.get(p.get("refid", "").strip())
    if recharge is None:
        return {"STATUS": "FAILED", "RECHARGE_STATUS": "INVALIDREF", "MESSAGE": "Sorry! Invalid Reference"}
    if recharge.upcoming:
        recharge.status = recharge.upcoming.pop(0) if len(recharge.upcoming) > 1 else recharge.upcoming[0]
    if recharge.status == "FAILED" and not recharge.refunded:
        state.main_balance += recharge.amount  # eCare gives a failed recharge back to the wallet
        recharge.refunded = True
    if recharge.status in ("SUCCESS", "FAILED"):
        verb = "successful" if recharge.status == "SUCCESS" else "failed"
        return {"STATUS": "OK", "RECHARGE_STATUS": recharge.status, "RECHARGE_TRXID": recharge.trxid,
                "MESSAGE": f"Recharge of Tk {recharge.amount} to {recharge.number} {verb}. "
                           f"TrxID {recharge.trxid}"}
    return {"STATUS": "OK", "RECHARGE_STATUS": recharge.status, "RECHARGE_TRXID": "", "MESSAGE": ""}


def _balance(state: ECareState) -> dict[str, Any]:
    return {"STATUS": "OK", "MAIN_BALANCE": f"{state.main_balance:,.2f}",
            "STOCK_BALANCE": f"{state.stock_balance:,.2f}", "COMMISSION_TYPE": "Prepaid",
            "COMMISSION_RATE": "3.00", "MESSAGE": "Balance Equerry Success"}


async def _api(request: web.Request) -> web.StreamResponse:
    # Shielded: like the real upstream, a call that arrived completes even if the caller hangs
    # up (a client timeout must leave the outcome unknown, not undone).
    return await asyncio.shield(_serve(request))


async def _serve(request: web.Request) -> web.StreamResponse:
    params = dict(request.query)
    if request.method == "POST":
        params.update({k: str(v) for k, v in (await request.post()).items()})
    service = params.get("service", "").strip().upper()
    await record_call(request, service)
    fault = await apply_fault(request.app[FAULTS_KEY], service)
    if fault is not None:
        return fault
    state = request.app[STATE_KEY]
    if params.get("access_id") != state.access_id:
        return web.json_response({"STATUS": "FAILED", "MESSAGE": "Login Failed"})
    if params.get("access_pass") != state.access_pass:
        return web.json_response({"STATUS": "INVALID", "MESSAGE": "Login Failed, Invalid Credential"})
    if state.maintenance:
        return web.json_response(MAINTENANCE)
    if service == "MRC":
        return web.json_response(_mrc(state, params))
    if service == "MRCSTATUS":
        return web.json_response(_mrc_status(state, params))
    if service == "BLCK":
        return web.json_response(_balance(state))
    if service == "OFFERPACK":
        return web.json_response({"STATUS": "OK", "MESSAGE": "Offer Pack List", "OFFER_LIST": OFFER_PACKS})
    return web.json_response({"STATUS": "OK", "MESSAGE": "INVALID SERVICE"})  # as the API document pairs them


# --- control routes ------------------------------------------------------------------------


def _statuses(data: dict[str, Any]) -> list[str]:
    statuses = [str(s).upper() for s in data.get("statuses", [])]
    if not statuses or any(s not in POLL_STATUSES for s in statuses):
        raise web.HTTPBadRequest(text=f"statuses must be a non-empty list of {POLL_STATUSES}")
    return statuses


async def _script(request: web.Request) -> web.Response:
    """Statuses MRCSTATUS will report for one refid, before or after it is submitted."""
    data = await request.json()
    state, refid, statuses = request.app[STATE_KEY], str(data["refid"]), _statuses(data)
    if refid in state.recharges:
        state.recharges[refid].upcoming = statuses
    else:
        state.scripts[refid] = statuses
    return web.json_response({"ok": True})


async def _default(request: web.Request) -> web.Response:
    request.app[STATE_KEY].default_statuses = _statuses(await request.json())
    return web.json_response({"ok": True})


async def _wallet(request: web.Request) -> web.Response:
    data, state = await request.json(), request.app[STATE_KEY]
    if "main_balance" in data:
        state.main_balance = Decimal(str(data["main_balance"]))
    if "stock_balance" in data:
        state.stock_balance = Decimal(str(data["stock_balance"]))
    return web.json_response(_balance(state))


async def _maintenance(request: web.Request) -> web.Response:
    request.app[STATE_KEY].maintenance = bool((await request.json()).get("on", True))
    return web.json_response({"ok": True})


async def _recharges(request: web.Request) -> web.Response:
    return web.json_response([r.as_dict() for r in request.app[STATE_KEY].recharges.values()])


class _RedactAccessLog(logging.Filter):
    """aiohttp's access log prints the request line, and eCare puts access_pass in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in list(vars(record).items()):
            if isinstance(value, str) and "access_pass=" in value:
                setattr(record, name, _SECRET_RE.sub(r"\1<redacted>", value))
        return True


_SECRET_RE = re.compile(r"(access_pass=)[^&\s\"]*")


def _redact_access_log() -> None:
    logger = logging.getLogger("aiohttp.access")
    if not any(isinstance(f, _RedactAccessLog) for f in logger.filters):
        logger.addFilter(_RedactAccessLog())


def create_ecare_fake(access_id: str = "sandbox", access_pass: str = "sandbox-pass") -> web.Application:
    """The eCare fake; serve it and point ECareClient at `<root>` + ECARE_PATH."""
    _redact_access_log()
    app = web.Application()
    app[STATE_KEY] = ECareState(access_id=access_id, access_pass=access_pass)
    add_control_routes(app)
    app.router.add_route("GET", ECARE_PATH, _api)
    app.router.add_route("POST", ECARE_PATH, _api)
    app.router.add_post("/_control/ecare/script", _script)
    app.router.add_post("/_control/ecare/default", _default)
    app.router.add_post("/_control/ecare/wallet", _wallet)
    app.router.add_post("/_control/ecare/maintenance", _maintenance)
    app.router.add_get("/_control/ecare/recharges", _recharges)
    return app
