"""Contract fake of BDApps CAAS (docs/upstreams.md), as a small aiohttp app.

Routes, relative to the app root: POST /caas/balance/query, /caas/list/pi, /caas/direct/debit
(JSON in, JSON out; errors as HTTP 200 with a statusCode other than S1000, like BDApps).
Fault endpoints (faults.py) are those paths.

Seeded subscribers (balances in taka); any other well-formed `tel:` id is created on first use
with 100.00 PREPAID so `alap dev` works with whatever ids the gateway fake invents:

    tel:8801812345678              100.00  PREPAID
    tel:8801612345678              250.00  POSTPAID
    tel:8801898765432                3.50  PREPAID
    tel:8801855500000                0.00  PREPAID
    tel:B%3C4pbgsmXQ7Lk2iYp0aR1dZ   42.75  PREPAID   (a masked id)

Ids are looked up with the space after "tel:" removed (the API document writes "tel: 8801...").

OUR ASSUMPTION, not documented by BDApps: `externalTrxId` makes a debit idempotent. A repeat
with the same id, subscriber and amount answers the original success again and does not charge
twice; a repeat with other values answers E1337 (duplicate request). Only successful debits
are remembered: a declined one (E1308) may be retried under the same id.

Control routes (besides /_control/faults and /_control/calls):
    POST /_control/caas/balance  {"subscriberId": "...", "balance": "12.50", "accountType": "PREPAID"}
    GET  /_control/caas/debits   -> debits actually applied: [{"externalTrxId", "subscriberId", ...}]
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

from server.sandbox.faults import FAULTS_KEY, add_control_routes, apply_fault, record_call

DHAKA = timezone(timedelta(hours=6))
PAYMENT_INSTRUMENTS = [{"name": "Mobile Account", "type": "sync"}]
AMOUNT_RE = re.compile(r"^\d+(\.\d{1,2})?$")


@dataclass
class Account:
    balance: Decimal
    account_type: str = "PREPAID"
    account_status: str = "0"


@dataclass
class CaasState:
    app_id: str
    password: str
    default_balance: Decimal = Decimal("100.00")
    accounts: dict[str, Account] = field(default_factory=lambda: {
        "tel:8801812345678": Account(Decimal("100.00")),
        "tel:8801612345678": Account(Decimal("250.00"), "POSTPAID"),
        "tel:8801898765432": Account(Decimal("3.50")),
        "tel:8801855500000": Account(Decimal("0.00")),
        "tel:B%3C4pbgsmXQ7Lk2iYp0aR1dZ": Account(Decimal("42.75")),
    })
    debits: dict[str, dict[str, Any]] = field(default_factory=dict)  # externalTrxId -> record
    seq: int = 0

    def account(self, subscriber_id: str) -> Account:
        return self.accounts.setdefault(_key(subscriber_id), Account(self.default_balance))


STATE_KEY = web.AppKey("caas_state", CaasState)


class CaasFail(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code)
        self.body = {"statusCode": code, "statusDetail": detail}


def _key(subscriber_id: str) -> str:
    return "tel:" + subscriber_id[4:].strip()


def _invalid(reason: str) -> CaasFail:
    return CaasFail("E1312", f"Request is Invalid. {reason}")


def _check(state: CaasState, body: Any, *required: str) -> dict[str, Any]:
    """Authentication and the fields every CAAS call needs; raises CaasFail."""
    if not isinstance(body, dict):
        raise _invalid("Body is not a JSON object")
    app_id = body.get("applicationId")
    if app_id != state.app_id or body.get("password") != state.password:
        raise CaasFail("E1313", f"Authentication failed. No such active application with applicationId "
                                f"{app_id}, or no active service provider or the given password in the "
                                f"request is invalid.")
    for name in ("subscriberId", *required):
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise _invalid(f"Mandatory field {name} is missing")
    if not body["subscriberId"].lower().startswith("tel:"):
        raise CaasFail("E1325", 'Format of the address is invalid. Expected format is "tel: 8801812345678"')
    if "paymentInstrumentName" in required and body["paymentInstrumentName"] != "Mobile Account":
        raise _invalid("Unknown paymentInstrumentName")
    if body.get("currency", "BDT") != "BDT":
        raise _invalid("Only 'BDT' is allowed as currency")
    return body


def _balance(state: CaasState, body: Any) -> dict[str, Any]:
    body = _check(state, body, "paymentInstrumentName")
    account = state.account(body["subscriberId"])
    return {"statusCode": "S1000", "chargeableBalance": f"{account.balance:.2f}",
            "statusDetail": "Request was successfully processed",
            "accountStatus": account.account_status, "accountType": account.account_type}


def _list_pi(state: CaasState, body: Any) -> dict[str, Any]:
    body = _check(state, body)
    kind = body.get("type", "all")
    if kind not in ("sync", "async", "all"):
        raise _invalid("type must be sync, async or all")
    items = [pi for pi in PAYMENT_INSTRUMENTS if kind in ("all", pi["type"])]
    return {"statusCode": "S1000", "statusDetail": "Success", "paymentInstrumentList": items}


def _debit(state: CaasState, body: Any) -> dict[str, Any]:
    body = _check(state, body, "externalTrxId", "amount", "paymentInstrumentName")
    trx_id, amount_text, subscriber = body["externalTrxId"], body["amount"], body["subscriberId"]
    if len(trx_id) > 32:
        raise _invalid("externalTrxId is longer than 32 characters")
    if not AMOUNT_RE.match(amount_text) or Decimal(amount_text) <= 0:
        raise _invalid("amount must be a positive number with at most 2 decimals")
    amount = Decimal(amount_text)
    earlier = state.debits.get(trx_id)
    if earlier is not None:  # our idempotency assumption, see the module docstring
        if earlier["subscriberId"] == _key(subscriber) and earlier["amount"] == amount:
            return earlier["response"]
        raise CaasFail("E1337", "Duplicate request.")
    account = state.account(subscriber)
    if amount > account.balance:
        raise CaasFail("E1308", "Permanent charging error due Insufficient Balance.")
    account.balance -= amount
    state.seq += 1
    now = datetime.now(DHAKA)
    response = {"statusCode": "S1000", "timeStamp": now.isoformat(timespec="milliseconds"),
                "externalTrxId": trx_id, "statusDetail": "Request was successfully processed",
                "internalTrxId": f"9{now:%y%m%d}{state.seq:08d}",
                "referenceId": f"{(state.seq * 7919 + 31415926) % 100_000_000:08d}"}
    state.debits[trx_id] = {"subscriberId": _key(subscriber), "amount": amount, "response": response}
    return response


HANDLERS = {"/caas/balance/query": _balance, "/caas/list/pi": _list_pi, "/caas/direct/debit": _debit}


async def _api(request: web.Request) -> web.StreamResponse:
    # Shielded: like the real gateway, a debit that arrived completes even if the caller hangs
    # up (a client timeout must leave the outcome unknown, not undone).
    return await asyncio.shield(_serve(request))


async def _serve(request: web.Request) -> web.StreamResponse:
    # Suffix match: the fake may be mounted under a prefix (alap dev: /sandbox/caas/).
    endpoint = next(p for p in HANDLERS if request.path.endswith(p))
    entry = await record_call(request, endpoint)
    fault = await apply_fault(request.app[FAULTS_KEY], endpoint)
    if fault is not None:
        return fault
    try:
        return web.json_response(HANDLERS[endpoint](request.app[STATE_KEY], entry.get("json")))
    except CaasFail as fail:
        return web.json_response(fail.body)  # BDApps: errors are HTTP 200


async def _set_balance(request: web.Request) -> web.Response:
    data = await request.json()
    state = request.app[STATE_KEY]
    account = state.account(str(data["subscriberId"]))
    account.balance = Decimal(str(data["balance"]))
    account.account_type = str(data.get("accountType", account.account_type))
    return web.json_response({"subscriberId": _key(data["subscriberId"]), "balance": f"{account.balance:.2f}",
                              "accountType": account.account_type})


async def _list_debits(request: web.Request) -> web.Response:
    return web.json_response([
        {"externalTrxId": trx_id, "subscriberId": d["subscriberId"], "amount": str(d["amount"]),
         "internalTrxId": d["response"]["internalTrxId"]}
        for trx_id, d in request.app[STATE_KEY].debits.items()])


def create_caas_fake(app_id: str = "APP_000001", password: str = "sandbox") -> web.Application:
    """The CAAS fake; serve it and point CaasClient's base_url at its root."""
    app = web.Application()
    add_control_routes(app)
    add_caas_routes(app, app_id, password)
    return app


def add_caas_routes(app: web.Application, app_id: str, password: str) -> None:
    """CAAS routes on an app that already has control routes (the BDApps fake serves both,
    as the real BDApps does under one base URL)."""
    app[STATE_KEY] = CaasState(app_id=app_id, password=password)
    for path in HANDLERS:
        app.router.add_post(path, _api)
    app.router.add_post("/_control/caas/balance", _set_balance)
    app.router.add_get("/_control/caas/debits", _list_debits)
