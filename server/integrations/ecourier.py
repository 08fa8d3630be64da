"""eCourier reseller API client (seed 000, "API DOCUMENT (RESELLER)" v3).

Alap uses eCourier to track parcels from a USSD menu and, through flow actions, to place and
cancel orders, look up cities/thanas/post codes/areas/branches, check a customer's fraud status
and use the Booster SMS / top-up services.

Configuration (read by `server/config.py`, never here; the caller passes the values):

    ECOURIER_BASE_URL    API root, default https://staging.ecourier.com.bd/api
                         (live: https://backoffice.ecourier.com.bd/api)
    ECOURIER_API_KEY     sent as the API-KEY header
    ECOURIER_API_SECRET  sent as the API-SECRET header
    ECOURIER_USER_ID     sent as the USER-ID header

Every endpoint is a JSON POST. eCourier reports many errors inside HTTP 200 bodies, in three
shapes: `{"errors": [...], "response_code": N}`, `{"success": false, "response_code": N,
"message": "..."}` and, for tracking, `"query_data": "No Data Found"`. `_raise_for_envelope`
maps all of them (and HTTP statuses, non-JSON bodies, timeouts, refused connections) to the
typed errors of `base.py` plus the `ECourier*` subclasses below.

Retries: reads (tracking, lists, fraud check, top-up status) are idempotent and are retried
once on a fast failure (5xx, refused connection, garbled body), never on a timeout because
the USSD budget has no room for a second wait. Writes (place order, cancel, SMS, top-up) are
never retried here, and their errors say `retryable=False` unless the request provably did
not take effect (connection refused, or eCourier's own "Unable to process now").

Liberal in what we accept: numbers may arrive as strings or numbers ("200", 200, "1,200");
booleans as true/"true"/1; strings are stripped; optional fields may be missing; lists may be
bare (`[...]`) or wrapped (`{"success": true, "message": [...]}`). Exact in what we send: see
each method's docstring.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Mapping, Sequence

import httpx

from server.integrations.base import (
    Timeouts, UpstreamAuthError, UpstreamConnectError, UpstreamError, UpstreamMalformed,
    UpstreamRejected, UpstreamTimeout, UpstreamUnavailable, json_body, make_http_client,
    raise_for_http_status, send,
)
from server.metrics import register_error_codes

UPSTREAM = "ecourier"
DEFAULT_BASE_URL = "https://staging.ecourier.com.bd/api"
# eCourier's timestamps carry no zone; they are Bangladesh time (UTC+6, no DST).
DHAKA = timezone(timedelta(hours=6), "Asia/Dhaka")
PAYMENT_METHODS = ("COD", "POS", "MPAY", "CCRD")


# --- errors -------------------------------------------------------------------------------

class ECourierNotFound(UpstreamRejected):
    """No such parcel / tracking / transaction, or a list lookup found nothing."""


class ECourierInvalidRequest(UpstreamRejected):
    """eCourier says the request is incomplete or wrong ("Invalid Request", missing data)."""


class ECourierInvalidId(ECourierInvalidRequest):
    """Tracking was asked with no usable product id / ECR number."""


class ECourierInvalidNumber(ECourierInvalidRequest):
    """Not a valid Bangladeshi mobile number (eCourier's verdict, or ours before sending)."""


class ECourierInvalidAmount(ECourierInvalidRequest):
    """Top-up amount outside eCourier's limits (50 to 1,000 TK)."""


class ECourierInvalidPackage(ECourierInvalidRequest):
    """The package code does not exist or is not assigned to this account."""


class ECourierDuplicateOrder(UpstreamRejected):
    """An order with this product id and mobile exists already: after an uncertain place_order,
    this means the first attempt went through."""


class ECourierNotCancelled(UpstreamRejected):
    """The parcel exists but eCourier did not cancel it (no longer "Initiated")."""


class ECourierInsufficientBalance(UpstreamRejected):
    """The account's COD balance cannot pay for the SMS / top-up / service."""


class ECourierNotEnabled(UpstreamRejected):
    """The service is not set up for this account (needs eCourier support: SMS rate, masking
    name, fraud-check subscription)."""


class ECourierSmsNotSent(UpstreamRejected):
    """No SMS went out; `wrong` lists the numbers eCourier refused."""

    @property
    def wrong(self) -> tuple[str, ...]:
        return _strings(self.body.get("wrong")) if isinstance(self.body, dict) else ()


class ECourierBusy(UpstreamUnavailable):
    """eCourier said "Unable to process now. Please try again later": nothing happened, so
    even a write may be repeated later."""


# Matched in order against the lower-cased error texts of a failed body; eCourier reuses
# response codes (401 means "bad credentials", "invalid mobile" or "invalid transaction"
# depending on the endpoint), so the text decides, the code only breaks ties.
_RULES: tuple[tuple[str, type[UpstreamError], str], ...] = (
    ("unauthorized access", UpstreamAuthError, "unauthorized"),
    ("no data found", ECourierNotFound, "no_data"),
    ("invalid tracking", ECourierNotFound, "invalid_tracking"),
    ("invalid transaction id", ECourierNotFound, "invalid_transaction"),
    ("not found by your search", ECourierNotFound, "not_found"),
    ("please set product id or ecr", ECourierInvalidId, "invalid_id"),
    ("invalid package", ECourierInvalidPackage, "invalid_package"),
    ("duplicate product id", ECourierDuplicateOrder, "duplicate"),
    ("invalid number", ECourierInvalidNumber, "invalid_number"),
    ("invalid mobile number", ECourierInvalidNumber, "invalid_number"),
    ("insufficient cod balance", ECourierInsufficientBalance, "insufficient_balance"),
    ("contact with ecourier support to enjoy", ECourierNotEnabled, "not_enabled"),
    ("sms rate not define", ECourierNotEnabled, "sms_rate_missing"),
    ("masking name missing", ECourierNotEnabled, "masking_missing"),
    ("not cancel", ECourierNotCancelled, "not_cancelled"),
    ("sms not sent", ECourierSmsNotSent, "sms_not_sent"),
    ("top up amount must be", ECourierInvalidAmount, "invalid_amount"),
    ("unable to process now", ECourierBusy, "busy"),
    ("unable to insert orders", UpstreamUnavailable, "insert_failed"),
    ("missing", ECourierInvalidRequest, "missing_data"),
    ("invalid request", ECourierInvalidRequest, "invalid_request"),
    ("invalid data", ECourierInvalidRequest, "invalid_data"),
)
register_error_codes([*(word for _, _, word in _RULES), "invalid_id", "no_data", "invalid_number", "401"])


# --- results ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlacedOrder:
    tracking_id: str  # "ECR..."
    message: str


@dataclass(frozen=True)
class StatusEvent:
    status: str  # "Delivered", "In Transit", ...
    comment: str
    at: datetime | None  # Asia/Dhaka; None when eCourier's time could not be read
    time_text: str  # the time exactly as eCourier wrote it


@dataclass(frozen=True)
class Parcel:
    tracking_id: str  # REFID, "ECR..."
    product_id: str
    status: StatusEvent | None  # the newest event
    history: tuple[StatusEvent, ...]  # newest first
    company: str = ""
    recipient_name: str = ""
    recipient_mobile: str = ""
    recipient_address: str = ""
    recipient_area: str = ""
    parcel_type: str = ""
    booked_at: datetime | None = None
    agent: str = ""
    payment_method: str = ""
    payment_status: str = ""
    delivery_timing: str = ""
    coverage: str = ""
    weight: str = ""
    product_price: Decimal | None = None
    shipping_price: Decimal | None = None
    cod: Decimal | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and self.status.status.lower() == "delivered"


@dataclass(frozen=True)
class TrackResult:
    """Every parcel matching the query: a product id that is not unique matches several."""

    parcels: tuple[Parcel, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.parcels) > 1

    @property
    def latest(self) -> Parcel:
        """The parcel whose status changed last (the only one, when not ambiguous)."""
        floor = datetime.min.replace(tzinfo=DHAKA)
        return max(self.parcels, key=lambda p: (p.status.at or floor) if p.status else floor)


@dataclass(frozen=True)
class Package:
    code: str  # "#2505", what place_order wants as package_code
    name: str
    shipping_charge: Decimal | None
    weight: str
    delivery_time: str
    coverage_id: str
    coverage: str


@dataclass(frozen=True)
class NamedValue:
    """One entry of the city/thana/post code/area/branch lists: show `name`, send `value`."""

    name: str
    value: str


@dataclass(frozen=True)
class FraudStatus:
    customer_status: str  # eCourier's text: "Warning!", "Verified by eCourier", ...
    verdict: Literal["warning", "new", "verified", "unknown"]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Cancelled:
    tracking_id: str
    message: str


@dataclass(frozen=True)
class SmsResult:
    message: str
    wrong: tuple[str, ...]  # numbers eCourier did not send to (response_code 206)

    @property
    def partial(self) -> bool:
        return bool(self.wrong)


@dataclass(frozen=True)
class TopUpAccepted:
    transaction_id: str
    message: str


@dataclass(frozen=True)
class TopUpStatus:
    transaction_id: str
    recharged: bool
    message: str


@dataclass(frozen=True)
class OrderRequest:
    """One parcel to book. Field names follow the seed's parameter table; optional fields left
    as None are not sent at all (eCourier applies its documented defaults)."""

    pick_district: str
    pick_thana: str
    pick_union: str  # pickup post code
    pick_address: str
    pick_mobile: str
    pick_hub: int | str  # branch id from branch_list()
    ep_id: int | str
    recipient_name: str
    recipient_mobile: str
    recipient_city: str
    recipient_area: str
    recipient_thana: str
    recipient_union: str  # recipient post code
    recipient_address: str
    package_code: str  # from packages(), e.g. "#2505"
    product_price: int | str
    payment_method: str = "COD"  # COD, POS, MPAY or CCRD
    ep_name: str | None = None
    pick_contact_person: str | None = None
    pick_division: str | None = None
    recipient_division: str | None = None
    recipient_district: str | None = None
    parcel_detail: str | None = None
    actual_product_price: int | str | None = None
    number_of_items: int | str | None = None
    order_code: str | None = None  # your product/order id; eCourier rejects a duplicate


# --- client -------------------------------------------------------------------------------

class ECourierClient:
    """One per process: `await client.aclose()` at shutdown.

    `http` lets a caller share a client (tests, custom transports); it is then not closed by
    `aclose()`, `timeouts` is ignored, and the auth headers and full URL go with each request.
    """

    def __init__(self, base_url: str, api_key: str, api_secret: str, user_id: str, *,
                 timeouts: Timeouts | None = None, http: httpx.AsyncClient | None = None,
                 read_retries: int = 1) -> None:
        headers = {"API-KEY": api_key, "API-SECRET": api_secret, "USER-ID": user_id,
                   "Content-Type": "application/json", "Accept": "application/json"}
        self._owns_http = http is None
        self._http = http or make_http_client(base_url.rstrip("/"), timeouts=timeouts, headers=headers)
        self._prefix = "" if self._owns_http else base_url.rstrip("/")
        self._request_headers = None if self._owns_http else headers
        self._read_retries = max(0, read_retries)

    def __repr__(self) -> str:  # never the secrets
        return f"ECourierClient(base_url={str(self._http.base_url) or self._prefix!r})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- orders ------------------------------------------------------------------------------

    async def place_order(self, order: OrderRequest) -> PlacedOrder:
        """POST /order-place-reseller. Never retried: on a timeout or 5xx, ask `track(product_id=
        order.order_code)` or place again with the same `order_code` (eCourier then answers
        ECourierDuplicateOrder if the first one went through).

        Sent: the parameter table's names and types (the seed's sample disagrees with its own
        table in places; the table wins): strings stripped; `pick_hub`, `ep_id`,
        `product_price`, `actual_product_price`, `number_of_items` as JSON integers;
        `payment_method` as its upper-case code; mobiles as 11 digits `01XXXXXXXXX`
        (ECourierInvalidNumber before sending if that is impossible); None fields omitted.
        """
        body: dict[str, Any] = {}
        for name in ("ep_name", "pick_contact_person", "pick_division", "pick_district", "pick_thana",
                     "pick_union", "pick_address", "recipient_name", "recipient_division",
                     "recipient_district", "recipient_city", "recipient_area", "recipient_thana",
                     "recipient_union", "recipient_address", "package_code", "parcel_detail",
                     "order_code"):
            value = getattr(order, name)
            if value is not None:
                body[name] = str(value).strip()
        body["pick_mobile"] = normalize_mobile(order.pick_mobile)
        body["recipient_mobile"] = normalize_mobile(order.recipient_mobile)
        for name in ("pick_hub", "ep_id", "product_price", "actual_product_price", "number_of_items"):
            value = getattr(order, name)
            if value is not None:
                body[name] = _whole_number(value, name)
        method = order.payment_method.strip().upper()
        if method not in PAYMENT_METHODS:
            raise ValueError(f"payment_method must be one of {', '.join(PAYMENT_METHODS)}")
        body["payment_method"] = method
        data = await self._post("/order-place-reseller", body, idempotent=False)
        tracking = _text(_field(data, "ID", "id"))
        if not tracking:
            raise _malformed("order accepted without an ID", data)
        return PlacedOrder(tracking_id=tracking, message=_text(_field(data, "message")))

    async def cancel_order(self, tracking_id: str, comment: str) -> Cancelled:
        """POST /cancel-order {"tracking", "comment"}. Only "Initiated" parcels can be cancelled.
        The ECR id is sent upper-cased without spaces; the comment stripped and cut to the
        documented 255 characters (a long reason should not cost the cancellation)."""
        tracking = _ecr(tracking_id)
        data = await self._post("/cancel-order", {"tracking": tracking, "comment": comment.strip()[:255]},
                                idempotent=False)
        return Cancelled(tracking_id=tracking, message=_text(_field(data, "message")))

    async def track(self, reference: str | None = None, *, ecr: str | None = None,
                    product_id: str | None = None) -> TrackResult:
        """POST /track. `reference` is what a subscriber typed: an `ECR...` id (any case,
        stray spaces) is sent as `ecr`, anything else as `product_id`. Both keywords may be
        given together, as the seed allows. Keys sent are lower-case (`product_id`, `ecr`),
        as in the seed's request sample.

        Raises ECourierNotFound when nothing matches, ECourierInvalidId when there is
        nothing to look up (checked before sending, and eCourier's own 400).
        """
        if reference is not None and reference.strip():
            if re.fullmatch(r"\s*ecr\s*[0-9০-৯][0-9০-৯\s]*", reference, re.IGNORECASE):
                ecr = ecr or reference
            else:
                product_id = product_id or reference
        body: dict[str, str] = {}
        if product_id is not None and product_id.strip():
            body["product_id"] = product_id.strip()
        if ecr is not None and ecr.strip():
            body["ecr"] = _ecr(ecr)
        if not body:
            raise ECourierInvalidId(UPSTREAM, "invalid_id", "Please Set product id or ecr number or both")
        data = await self._post("/track", body, idempotent=True)
        if not isinstance(data, dict):
            raise _malformed("tracking answer is not an object", data)
        found = data.get("query_data")
        if isinstance(found, str) or not found:
            raise ECourierNotFound(UPSTREAM, "no_data", _text(found) or "No Data Found", body=data)
        if not isinstance(found, list):
            raise _malformed("query_data is neither a list nor a message", data)
        return TrackResult(parcels=tuple(_parcel(item, data) for item in found))

    # -- reference data ----------------------------------------------------------------------

    async def packages(self) -> list[Package]:
        """POST /packages with an empty JSON object (the seed shows no body; `{}` keeps the
        declared Content-Type true)."""
        items = _items(await self._post("/packages", {}, idempotent=True))
        return [Package(code=_text(i.get("package_code")), name=_text(i.get("package_name")),
                        shipping_charge=_money(i.get("shipping_charge")), weight=_text(i.get("weight")),
                        delivery_time=_text(i.get("delivery_time")), coverage_id=_text(i.get("coverage_id")),
                        coverage=_text(i.get("coverage")))
                for i in items]

    async def city_list(self) -> list[NamedValue]:
        """POST /city-list with `{}`."""
        return _named(await self._post("/city-list", {}, idempotent=True))

    async def thana_list(self, city: str) -> list[NamedValue]:
        """POST /thana-list {"city"}."""
        return _named(await self._post("/thana-list", {"city": city.strip()}, idempotent=True))

    async def postcode_list(self, city: str, thana: str) -> list[NamedValue]:
        """POST /postcode-list {"city", "thana"}; `value` is the post code."""
        body = {"city": city.strip(), "thana": thana.strip()}
        return _named(await self._post("/postcode-list", body, idempotent=True))

    async def area_list(self, city: str, thana: str, postcode: str | int) -> list[NamedValue]:
        """POST /area-list {"city", "thana", "postcode"}. The seed contradicts itself: its table
        asks for city and thana, its title and error ("Please select postcode") for a post
        code. Sending all three satisfies either reading."""
        body = {"city": city.strip(), "thana": thana.strip(), "postcode": str(postcode).strip()}
        return _named(await self._post("/area-list", body, idempotent=True))

    async def branch_list(self) -> list[NamedValue]:
        """POST /branch-list with `{}`; `value` (a number upstream) is the `pick_hub` id, as text."""
        return _named(await self._post("/branch-list", {}, idempotent=True))

    async def fraud_status(self, number: str) -> FraudStatus:
        """POST /fraud-status-check {"number": "01XXXXXXXXX"}. A read: retried like the lists."""
        data = await self._post("/fraud-status-check", {"number": normalize_mobile(number)}, idempotent=True)
        status = _text(_field(data, "customer_status"))
        lowered = status.lower()
        verdict: Literal["warning", "new", "verified", "unknown"] = (
            "warning" if "warning" in lowered else "verified" if "verified" in lowered
            else "new" if "new customer" in lowered else "unknown")
        return FraudStatus(customer_status=status, verdict=verdict, reasons=_strings(_field(data, "message")))

    # -- Booster services --------------------------------------------------------------------

    async def booster_sms(self, numbers: Sequence[str], text: str, *, masking: bool = True,
                          title: str = "booster", text_type: str = "text") -> SmsResult:
        """POST /bs-sms. `number` is sent as a flat JSON array of 11-digit numbers (the request
        sample; the table's `[[...]]` is taken as a typo); `service_type` "mask"/"nonmask".
        A partly sent batch (206) is a result with `wrong`; none sent raises ECourierSmsNotSent."""
        body = {"number": [normalize_mobile(n) for n in numbers], "op_title": title,
                "text_type": text_type, "op_body": text, "service_type": "mask" if masking else "nonmask"}
        return _sms(await self._post("/bs-sms", body, idempotent=False))

    async def otp_sms(self, number: str, text: str, *, masking: bool = True,
                      title: str = "booster", text_type: str = "text") -> SmsResult:
        """POST /bs-top-otp: one SMS, `number` as a single string (unlike /bs-sms)."""
        body = {"number": normalize_mobile(number), "op_title": title, "text_type": text_type,
                "op_body": text, "service_type": "mask" if masking else "nonmask"}
        return _sms(await self._post("/bs-top-otp", body, idempotent=False))

    async def booster_top_up(self, number: str, amount: int, *, postpaid: bool = False) -> TopUpAccepted:
        """POST /bs-top {"number", "amount", "operator_type"}: amount and operator_type (1 prepaid,
        2 postpaid) as JSON integers per the table. Moves money and has no client reference,
        so it is never retried: after a timeout, do not repeat blindly."""
        body = {"number": normalize_mobile(number), "amount": _whole_number(amount, "amount"),
                "operator_type": 2 if postpaid else 1}
        data = await self._post("/bs-top", body, idempotent=False)
        message = _text(_field(data, "message"))
        # The seed spells the key "transcation_id"; accept the correct spelling and, failing
        # both, the id quoted at the end of the message.
        trx = _text(_field(data, "transcation_id", "transaction_id"))
        if not trx:
            match = re.search(r"transaction id is\s*(\S+)", message, re.IGNORECASE)
            trx = match.group(1).rstrip(".") if match else ""
        if not trx:
            raise _malformed("top-up accepted without a transaction id", data)
        return TopUpAccepted(transaction_id=trx, message=message)

    async def booster_top_up_status(self, transaction_id: str) -> TopUpStatus:
        """POST /bs-top-status {"transaction_id"}. `recharged` is eCourier's `success` flag (the
        seed documents no pending state); an unknown id raises ECourierNotFound."""
        trx = transaction_id.strip()
        data = await self._post("/bs-top-status", {"transaction_id": trx}, idempotent=True)
        return TopUpStatus(transaction_id=trx, recharged=_bool(_field(data, "success")) is True,
                           message=_text(_field(data, "message")))

    # -- transport ---------------------------------------------------------------------------

    async def _post(self, path: str, body: Mapping[str, Any], *, idempotent: bool) -> Any:
        attempts = 1 + (self._read_retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                response = await send(self._http, UPSTREAM, "POST", self._prefix + path, json=dict(body),
                                      headers=self._request_headers)
                return _decode(response)
            except UpstreamError as exc:
                if not idempotent:
                    # A write whose fate is unknown must not be repeated blindly.
                    if not isinstance(exc, (UpstreamConnectError, ECourierBusy)):
                        exc.retryable = False
                    raise
                # A timeout already spent the USSD budget; a second wait would exceed it.
                if attempt + 1 >= attempts or not exc.retryable or isinstance(exc, UpstreamTimeout):
                    raise
        raise AssertionError("unreachable")


# --- decoding -----------------------------------------------------------------------------

def _decode(response: httpx.Response) -> Any:
    try:
        data = response.json()
    except ValueError:
        raise_for_http_status(response, UPSTREAM)  # an HTML error page keeps its HTTP meaning
        return json_body(response, UPSTREAM)  # 2xx but not JSON: raises UpstreamMalformed
    _raise_for_envelope(data, response.status_code)
    raise_for_http_status(response, UPSTREAM)  # JSON we do not recognise on a 4xx/5xx
    return data


def _raise_for_envelope(data: Any, http_status: int) -> None:
    """Raise the typed error an eCourier body describes; return if it describes success."""
    if not isinstance(data, dict):
        return  # bare lists (packages, cities) only come with success
    errors = _strings(data.get("errors"))
    code = _int(data.get("response_code"))
    success = _bool(data.get("success"))
    failed = bool(errors) or success is False or (code is not None and code >= 300) or http_status >= 400
    if not failed:
        return
    if not errors and code is None and success is None:
        return  # not an eCourier envelope; the HTTP status decides
    texts = errors or _strings(data.get("message")) + _strings(data.get("query_data"))
    detail = "; ".join(texts)
    lowered = detail.lower()
    status = code if code not in (None, 200) else (http_status if http_status >= 300 else None)
    for needle, cls, word in _RULES:
        if needle in lowered:
            raise cls(UPSTREAM, str(status) if status else word, detail, http_status=http_status, body=data)
    status = status or 400
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(UPSTREAM, str(status), detail, http_status=http_status, body=data)
    if http_status == 401 or (errors and status == 401):
        raise UpstreamAuthError(UPSTREAM, "401", detail, http_status=http_status, body=data)
    raise UpstreamRejected(UPSTREAM, str(status), detail or "rejected", http_status=http_status, body=data)


def _malformed(detail: str, data: Any) -> UpstreamMalformed:
    return UpstreamMalformed(UPSTREAM, "malformed", detail, body=data)


def _field(data: Any, *names: str) -> Any:
    if isinstance(data, dict):
        for name in names:
            if data.get(name) is not None:
                return data[name]
    return None


def _items(data: Any) -> list[dict[str, Any]]:
    """A list body, bare or wrapped as {"success": true, "message"|"data": [...]}."""
    if isinstance(data, dict):
        data = _field(data, "message", "data")
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise _malformed("expected a list of objects", data)
    return data


def _named(data: Any) -> list[NamedValue]:
    out = []
    for item in _items(data):
        name, value = _text(item.get("name")), _text(item.get("value"))
        out.append(NamedValue(name=name or value, value=value or name))
    return out


def _sms(data: Any) -> SmsResult:
    return SmsResult(message=_text(_field(data, "message")), wrong=_strings(_field(data, "wrong")))


def _parcel(item: Any, data: Any) -> Parcel:
    if not isinstance(item, dict):
        raise _malformed("a tracking entry is not an object", data)
    tracking = _text(_field(item, "REFID", "refid", "ecr"))
    if not tracking:
        raise _malformed("a tracking entry has no REFID", data)
    history = tuple(sorted((_event(e) for e in _list(item.get("status"))),
                           key=lambda e: e.at or datetime.min.replace(tzinfo=DHAKA), reverse=True))
    return Parcel(
        tracking_id=tracking, product_id=_text(item.get("product_id")),
        status=history[0] if history else None, history=history,
        company=_text(item.get("company")), recipient_name=_text(item.get("r_name")),
        recipient_mobile=_text(item.get("r_mobile")), recipient_address=_text(item.get("r_address")),
        recipient_area=_text(item.get("r_area")), parcel_type=_text(item.get("r_type")),
        booked_at=_time(item.get("r_time")), agent=_text(item.get("agent")),
        payment_method=_text(item.get("paymentmethod")), payment_status=_text(item.get("paymentclear")),
        delivery_timing=_text(item.get("r_timing")), coverage=_text(item.get("r_coverage")),
        weight=_text(item.get("r_weight")), product_price=_money(item.get("product_price")),
        shipping_price=_money(item.get("shipping_price")), cod=_money(item.get("cod")),
    )


def _event(raw: Any) -> StatusEvent:
    """["Delivered", "comment", "2017-01-20 12:04:55"]; also a dict or a short list."""
    if isinstance(raw, dict):
        parts = [raw.get("status"), raw.get("comment"), _field(raw, "time", "date", "created_at")]
    else:
        parts = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    status, comment, when = (parts + [None, None, None])[:3]
    return StatusEvent(status=_text(status), comment=_text(comment), at=_time(when), time_text=_text(when))


# --- lenient scalars ----------------------------------------------------------------------

_BENGALI_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")


def normalize_mobile(number: str) -> str:
    """"+880 1712-345678", "8801712345678", "1712345678", Bengali digits -> "01712345678".
    Raises ECourierInvalidNumber (without echoing the number: it is personal data)."""
    digits = re.sub(r"[\s\-+()]", "", str(number).translate(_BENGALI_DIGITS))
    if digits.startswith("880"):
        digits = digits[2:]
    elif len(digits) == 10 and digits.startswith("1"):
        digits = "0" + digits
    if not re.fullmatch(r"01[3-9][0-9]{8}", digits):
        raise ECourierInvalidNumber(UPSTREAM, "invalid_number", "not an 11-digit Bangladeshi mobile number")
    return digits


def _ecr(value: str) -> str:
    """" ecr ১০২২ 001175478" -> "ECR1022001175478"."""
    return re.sub(r"\s+", "", value.translate(_BENGALI_DIGITS)).upper()


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _strings(value: Any) -> tuple[str, ...]:
    """A message/errors/wrong field as texts: a list (nulls and blanks dropped) or one string."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(t for t in (_text(v) for v in items if not isinstance(v, (dict, list))) if t)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    return None


def _money(value: Any) -> Decimal | None:
    text = _text(value).replace(",", "")
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _whole_number(value: int | str, name: str) -> int:
    try:
        return int(str(value).strip().replace(",", ""))
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None


def _time(value: Any) -> datetime | None:
    text = _text(value).replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=DHAKA)
        except ValueError:
            continue
    return None
