"""Contract fake of the eCourier reseller API (docs/upstreams.md), for tests, `alap dev` and benchmarks.

Answers every endpoint of the API document with the API document's own body shapes and error texts, over a
little seeded data (see PARCELS etc. below). Conventions it follows, where the API document is vague:

- wrong API-KEY / API-SECRET / USER-ID: HTTP 401 `{"errors": ["Unauthorized Access"],
  "response_code": 401}`, exactly as the API document shows;
- `{"errors": [...]}` bodies go out with the HTTP status of their `response_code` (400/401/500),
  the API document's "Status" column; `{"success": false, "response_code": N}` bodies (fraud check,
  Booster services, cancel) go out as HTTP 200, since several of those codes (204, 206) cannot
  carry a body as real HTTP statuses;
- place order accepts `number_of_items` (the table) and `no_of_items` (the sample); tracking
  accepts `product_id` and `Product_id`.

Fault injection (`/_control/faults`, see faults.py) applies before the credential check, so a
test can make any endpoint delay, fail or serve a verbatim body. Each recorded call also
carries the request `headers`. Imports nothing of `server/` but faults.py.
"""
from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from aiohttp import web

from server.sandbox.faults import FAULTS_KEY, add_control_routes, apply_fault, record_call

DHAKA = timezone(timedelta(hours=6))
UNAUTHORIZED = {"errors": ["Unauthorized Access"], "response_code": 401}
MOBILE = re.compile(r"01[3-9]\d{8}")


def _parcel(refid: str, product_id: str, name: str, mobile: str, area: str, price: str,
            events: list[list[str]]) -> dict[str, Any]:
    return {"status": events, "REFID": refid, "company": "Alap Demo Shop", "product_id": product_id,
            "r_name": name, "r_mobile": mobile, "r_address": f"House 7, Road 5, {area}, Dhaka",
            "r_area": area, "r_type": "BOX", "r_time": events[-1][2], "agent": "Sayeed",
            "paymentmethod": "COD", "paymentclear": "Not Clear", "r_timing": "Next Day(24hr)",
            "r_coverage": "Inside Dhaka", "r_weight": "Up To 500gm", "product_price": price,
            "shipping_price": "60", "cod": int(price) + 60}


CHANGED = "Status has been changed"
# The API document's own sample: delivered, seven events, no product id (tests/integrations
# test the client against it too).
DOC_SAMPLE_PARCEL: dict[str, Any] = {
    "status": [["Delivered", "", "2017-01-20 12:04:55"],
               ["On the way to Delivery", CHANGED, "2017-01-20 12:03:39"],
               ["In Destination Branch", CHANGED, "2017-01-20 12:03:34"],
               ["In Transit", CHANGED, "2017-01-20 12:03:25"],
               ["In Source Branch", CHANGED, "2017-01-20 12:03:20"],
               ["Picked Up", CHANGED, "2017-01-20 12:01:37"],
               ["Initiated", "An order has been made by ecommerce", "2017-01-20 12:00:09"]],
    "REFID": "ECR1022001175478", "company": "MyTOTOcompany", "product_id": "", "r_name": "Mannan",
    "r_mobile": "01848308508", "r_address": "House:d,Block:d,Road:d,Area:Gopibag,City:Dhaka,Landmark:f",
    "r_area": "Gulshan-2", "r_type": "BOX", "r_time": "2017-01-20 12:00:09", "agent": "Sayeed",
    "paymentmethod": "COD", "paymentclear": "Clear", "r_timing": "Next Day(24hr)",
    "r_coverage": "Inside Dhaka", "r_weight": "Up To 500gm", "product_price": "10000",
    "shipping_price": "60", "cod": 100}
PARCELS: list[dict[str, Any]] = [
    DOC_SAMPLE_PARCEL,
    # Product id ALP-1001 was booked twice (the second parcel is still cancellable).
    _parcel("ECR2311005123401", "ALP-1001", "Rahima Khatun", "01711223344", "Middle Badda", "1200",
            [["On the way to Delivery", CHANGED, "2024-11-23 10:15:02"],
             ["In Destination Branch", CHANGED, "2024-11-23 08:40:11"],
             ["In Transit", CHANGED, "2024-11-22 21:05:40"],
             ["Picked Up", CHANGED, "2024-11-22 16:30:00"],
             ["Initiated", "An order has been made by ecommerce", "2024-11-22 11:02:17"]]),
    _parcel("ECR2311005123402", "ALP-1001", "Rahima Khatun", "01711223344", "Middle Badda", "1200",
            [["Initiated", "An order has been made by ecommerce", "2024-11-24 09:12:45"]]),
    _parcel("ECR2311005123403", "ALP-2002", "Kamal Hossain", "01812345678", "Dhanmondi 27", "850",
            [["In Transit", CHANGED, "2024-11-24 13:20:00"],
             ["Picked Up", CHANGED, "2024-11-24 11:45:09"],
             ["Initiated API", "An order has been made by ecommerce", "2024-11-24 10:00:31"]]),
]

PACKAGES = [
    {"package_name": "SAMEDAY_Inside_120tk", "package_code": "#2505", "shipping_charge": "120",
     "weight": "Up To 500gm", "delivery_time": "Same Day(8Hr)", "coverage_id": "1", "coverage": "Inside Dhaka"},
    {"package_name": "NEXTDAY_Inside_60tk", "package_code": "#2443", "shipping_charge": "60",
     "weight": "Up To 500gm", "delivery_time": "Next Day(24hr)", "coverage_id": "1", "coverage": "Inside Dhaka"},
    {"package_name": "Outside_Dhaka_130tk", "package_code": "#1755", "shipping_charge": "130",
     "weight": "Up To 1kg", "delivery_time": "3 Days(72hr)", "coverage_id": "2", "coverage": "Outside Dhaka"},
]

# city -> thana -> {post code: name shown, [areas]}
GEOGRAPHY: dict[str, dict[str, dict[str, tuple[str, list[str]]]]] = {
    "Dhaka": {
        "Badda": {"1212": ("1212(Badda)", ["Middle Badda", "North Badda"])},
        "Dhanmondi": {"1209": ("1209(Dhanmondi)", ["Dhanmondi 27", "Zigatola"])},
        "Gulshan": {"1212": ("1212(Gulshan)", ["Gulshan-2"]), "1213": ("1213(Banani)", ["Banani"])},
    },
    "Barishal": {
        "Agailjhara": {"8240": ("8240(Agailjhara)", ["Agailjhara Bazar"])},
        "Babuganj": {"8210": ("8210(Babuganj)", ["Babuganj Bazar", "Rahmatpur"]),
                     "8216": ("8216(Babuganj Bondor)", ["A K Khan"]),
                     "8217": ("8217(Babuganj Bondor)", ["Madhabpasha"])},
    },
    "Chattogram": {"Kotwali": {"4000": ("4000(Chittagong GPO)", ["Andarkilla", "Jamal Khan"])}},
}
BRANCHES = [{"name": "Andarkilla Hub", "value": 57}, {"name": "Dhanmondi Hub", "value": 18488},
            {"name": "Badda Hub", "value": 3}, {"name": "Barishal Hub", "value": 112}]
FRAUD_WARNINGS = {"01711000001": ["Returned 3 of the last 4 parcels", "Refused delivery twice"]}
VERIFIED = {"01711000002", "01848308508"}
ORDER_MANDATORY = ("pick_district", "pick_thana", "pick_union", "pick_address", "pick_mobile",
                   "recipient_name", "recipient_mobile", "recipient_city", "recipient_area",
                   "recipient_thana", "recipient_union", "recipient_address", "package_code",
                   "product_price", "payment_method", "ep_id", "pick_hub")


@dataclass
class FakeState:
    """What one fake instance holds; tests may read or change it through ECOURIER_FAKE_KEY."""

    api_key: str
    api_secret: str
    user_id: str
    parcels: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(PARCELS))
    balance: int = 1000  # COD balance in taka, paid out of by SMS (1 TK each) and top-ups
    top_ups: dict[str, dict[str, Any]] = field(default_factory=dict)
    sms: list[dict[str, Any]] = field(default_factory=list)
    serial: int = 0

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial


ECOURIER_FAKE_KEY = web.AppKey("ecourier_fake", FakeState)
Body = dict[str, Any]
Handler = Callable[[FakeState, Body], Awaitable[web.Response]]


def _errors(*texts: str | None, code: int = 400, **extra: Any) -> web.Response:
    return web.json_response({"errors": list(texts), "response_code": code, **extra}, status=code)


def _fail(code: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"success": False, "response_code": code, "message": message, **extra})


def _s(body: Body, *names: str) -> str:
    for name in names:
        if body.get(name) not in (None, ""):
            return str(body[name]).strip()
    return ""


def _key(name: str) -> str:
    return name.strip().lower().replace("barisal", "barishal")  # both spellings appear in the API document


def _lookup(table: dict[str, Any], name: str) -> Any:
    return next((v for k, v in table.items() if _key(k) == _key(name)), None)


def _now() -> str:
    return datetime.now(DHAKA).strftime("%Y-%m-%d %H:%M:%S")


# --- orders -------------------------------------------------------------------------------

async def place_order(state: FakeState, body: Body) -> web.Response:
    for name in ORDER_MANDATORY:
        value = _s(body, name)
        if not value or (name == "recipient_mobile" and not re.fullmatch(r"\d{11}", value)):
            return _errors("Invalid Request", f"{name} Parameter either missing or not set correctly. ")
    if _s(body, "package_code") not in {p["package_code"] for p in PACKAGES}:
        return _errors("Invalid Package", "The Package code does not exist or assigned to you")
    method = _s(body, "payment_method").upper()
    if method in ("COD", "BOD") and _s(body, "product_price") in ("0", "0.0", "0.00"):
        return _errors("Invalid Request", "Product price 0 not allow in BOD and COD payment method")
    code, mobile = _s(body, "order_code"), _s(body, "recipient_mobile")
    if code and any(p["product_id"] == code and p["r_mobile"] == mobile for p in state.parcels):
        return _errors("Invalid Request", "Duplicate product id and mobile supplied")
    refid = f"ECR{1030102170392 + state.next_serial()}"
    now = _now()
    parcel = _parcel(refid, code, _s(body, "recipient_name"), mobile, _s(body, "recipient_area"),
                     "0", [["Initiated API", "An order has been made by ecommerce", now]])
    parcel.update(r_address=_s(body, "recipient_address"), paymentmethod=method,
                  product_price=_s(body, "product_price"), cod=_s(body, "product_price"))
    state.parcels.append(parcel)
    return web.json_response({"errors": [], "response_code": 200, "message": "Order Submitted", "ID": refid})


async def track(state: FakeState, body: Body) -> web.Response:
    product_id, ecr = _s(body, "product_id", "Product_id"), _s(body, "ecr").upper()
    if not product_id and not ecr:
        return _errors("Invalid Data", "Please Set product id or ecr number or both")
    found = [p for p in state.parcels
             if (not ecr or p["REFID"] == ecr) and (not product_id or p["product_id"] == product_id)]
    return web.json_response({"response_code": 200, "message": "Success",
                              "query_data": found or "No Data Found"})


async def cancel_order(state: FakeState, body: Body) -> web.Response:
    tracking, comment = _s(body, "tracking").upper(), _s(body, "comment")
    parcel = next((p for p in state.parcels if p["REFID"] == tracking), None)
    if parcel is None:
        return web.json_response({"success": "false", "message": "Invalid Tracking"})
    if not comment or parcel["status"][0][0] not in ("Initiated", "Initiated API"):
        return web.json_response({"success": "false", "message": " Order not cancelled"})
    parcel["status"].insert(0, ["Cancelled", comment[:255], _now()])
    return web.json_response({"success": "true", "message": "Order canceled"})


async def fraud_status_check(state: FakeState, body: Body) -> web.Response:
    number = _s(body, "number")
    if not MOBILE.fullmatch(number):
        return _fail(203, "Invalid number. Please provide a valid number.")
    if number in FRAUD_WARNINGS:
        return web.json_response({"success": True, "response_code": 200, "customer_status": "Warning!",
                                  "message": FRAUD_WARNINGS[number]})
    status = "Verified by eCourier" if number in VERIFIED else "New Customer for eCourier"
    return web.json_response({"success": True, "response_code": 200, "customer_status": status, "message": ""})


# --- reference lists ----------------------------------------------------------------------

def _listed(items: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"success": True, "message": items})


async def packages(state: FakeState, body: Body) -> web.Response:
    return web.json_response(PACKAGES)


async def city_list(state: FakeState, body: Body) -> web.Response:
    return web.json_response([{"name": city, "value": city} for city in GEOGRAPHY])


async def thana_list(state: FakeState, body: Body) -> web.Response:
    if not _s(body, "city"):
        return _errors("Invalid Request", " Please select thana")
    thanas = _lookup(GEOGRAPHY, _s(body, "city"))
    if not thanas:
        return _errors("Invalid Request", " Thana not found by your search")
    return _listed([{"name": t, "value": t} for t in thanas])


async def postcode_list(state: FakeState, body: Body) -> web.Response:
    city, thana = _s(body, "city"), _s(body, "thana")
    if not city or not thana:
        return _errors("Invalid Data", "Please select city and thana. ")
    codes = _lookup(_lookup(GEOGRAPHY, city) or {}, thana)
    if not codes:
        return _errors("Invalid Data", "Postcode Not found by your search. ")
    return _listed([{"name": name, "value": code} for code, (name, _) in codes.items()])


async def area_list(state: FakeState, body: Body) -> web.Response:
    postcode = _s(body, "postcode")
    if not postcode:
        return _errors("Invalid Data", " Please select postcode. ")
    city, thana = _s(body, "city"), _s(body, "thana")
    areas = [area
             for c, thanas in GEOGRAPHY.items() if not city or _key(c) == _key(city)
             for t, codes in thanas.items() if not thana or _key(t) == _key(thana)
             for area in codes.get(postcode, ("", []))[1]]
    if not areas:
        return _errors("Invalid Request", "Area not found by your search. ")
    return _listed([{"name": a, "value": a} for a in areas])


async def branch_list(state: FakeState, body: Body) -> web.Response:
    return _listed(BRANCHES)


# --- Booster services ---------------------------------------------------------------------

def _send_sms(state: FakeState, body: Body, numbers: list[Any], missing: str) -> web.Response:
    if not all(_s(body, k) for k in ("op_title", "text_type", "op_body")) or not numbers \
            or _s(body, "service_type") not in ("mask", "nonmask"):
        return _fail(207, missing)
    good = [str(n).strip() for n in numbers if MOBILE.fullmatch(str(n).strip())]
    wrong = ["88" + str(n).strip() for n in numbers if not MOBILE.fullmatch(str(n).strip())]
    if len(good) > state.balance:
        return _fail(203, "Insufficient COD Balance")
    if not good:
        return _fail(204, "SMS not sent.", wrong=wrong)
    state.balance -= len(good)
    state.sms.extend({"to": n, "text": _s(body, "op_body")} for n in good)
    if wrong:
        return web.json_response({"success": True, "response_code": 206, "message": "Few SMS not sent",
                                  "wrong": wrong})
    return web.json_response({"success": True, "response_code": 200, "message": "All SMS sent", "wrong": []})


async def bs_sms(state: FakeState, body: Body) -> web.Response:
    if not isinstance(body.get("number"), list):
        return _errors("Invalid Request", None, success=False)
    return _send_sms(state, body, body["number"], "Missing Mandatory data")


async def bs_top_otp(state: FakeState, body: Body) -> web.Response:
    if isinstance(body.get("number"), (list, dict)):
        return _errors("Invalid Request", None, success=False)
    return _send_sms(state, body, [body["number"]] if _s(body, "number") else [], "Missing required data")


async def bs_top(state: FakeState, body: Body) -> web.Response:
    number, amount = _s(body, "number"), _s(body, "amount")
    if not number or not amount:
        return _fail(404, "Missing required data")
    if not MOBILE.fullmatch(number):
        return _fail(401, "Invalid Mobile Number. Please try with the correct mobile number")
    if not amount.isdigit() or not 50 <= int(amount) <= 1000:
        return _fail(405, "Top up amount must be between 50 to 1,000 TK.")
    if int(amount) > state.balance:
        return _fail(402, "Insufficient COD Balance")
    state.balance -= int(amount)
    trx = f"2388_{int(time.time())}_{74831 + state.next_serial()}"
    state.top_ups[trx] = {"number": number, "amount": int(amount), "operator_type": _s(body, "operator_type") or "1"}
    return web.json_response({"success": True, "response_code": 200, "transcation_id": trx,
                              "message": f"Request Successfully Accepted. Your transaction ID is {trx}"})


async def bs_top_status(state: FakeState, body: Body) -> web.Response:
    trx = _s(body, "transaction_id")
    if not trx:
        return _fail(404, "Missing required data")
    if trx not in state.top_ups:
        return _fail(401, "Invalid transaction ID supplied")
    return web.json_response({"success": True, "message": "Successfully recharged"})


# --- wiring -------------------------------------------------------------------------------

ROUTES: dict[str, Handler] = {
    "/order-place-reseller": place_order, "/track": track, "/packages": packages,
    "/cancel-order": cancel_order, "/fraud-status-check": fraud_status_check,
    "/city-list": city_list, "/thana-list": thana_list, "/area-list": area_list,
    "/postcode-list": postcode_list, "/branch-list": branch_list, "/bs-sms": bs_sms,
    "/bs-top": bs_top, "/bs-top-status": bs_top_status, "/bs-top-otp": bs_top_otp,
}


def _endpoint(path: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        entry = await record_call(request, path)
        entry["headers"] = dict(request.headers)
        injected = await apply_fault(request.app[FAULTS_KEY], path)
        if injected is not None:
            return injected
        state = request.app[ECOURIER_FAKE_KEY]
        sent = (request.headers.get("API-KEY"), request.headers.get("API-SECRET"), request.headers.get("USER-ID"))
        if sent != (state.api_key, state.api_secret, state.user_id):
            return web.json_response(UNAUTHORIZED, status=401)
        body = entry.get("json")
        if body is None and not entry.get("raw"):
            body = {}  # the list endpoints document no body at all
        if not isinstance(body, dict):
            return _errors("Invalid Request", None, success=False)
        return await handler(state, body)
    return serve


def create_ecourier_fake(api_key: str = "sandbox-key", api_secret: str = "sandbox-secret",
                         user_id: str = "sandbox-user") -> web.Application:
    """A fresh fake with its own copy of the API documented data. Mount it at the client's base URL
    (the paths here are relative to `.../api`)."""
    app = web.Application()
    app[ECOURIER_FAKE_KEY] = FakeState(api_key=api_key, api_secret=api_secret, user_id=user_id)
    add_control_routes(app)
    for path, handler in ROUTES.items():
        app.router.add_post(path, _endpoint(path, handler))
    return app
