"""The eCourier reseller API client: calls, answer decoding, number input (docs/upstreams.md).

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
"message": "..."}` and, for tracking, `"query_data": "No Data Found"`. `raise_for_envelope`
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
from typing import Any, Literal, Mapping, Sequence

import httpx

from server.integrations.base import (
    Timeouts, UpstreamClient, UpstreamConnectError, UpstreamError, UpstreamTimeout, read_with_retry, send,
)
from server.msisdn import local as local_number, normalise_digits

from .answers import decode_response, field_of, items_of, malformed, named_values, parcel_of, sms_result
from .errors import UPSTREAM, ECourierBusy, ECourierInvalidId, ECourierInvalidNumber, ECourierNotFound
from .models import (
    PAYMENT_METHODS, FraudStatus, NamedValue, OrderAnswer, OrderRequest, Package, SmsResult, TopUp, TrackResult,
)
from .values import as_bool, as_money, as_strings, as_text, as_whole_number

DEFAULT_BASE_URL = "https://staging.ecourier.com.bd/api"


# --- client -------------------------------------------------------------------------------

class ECourierClient(UpstreamClient):
    """One per process: `await client.aclose()` at shutdown.

    `http` lets a caller share a client (tests, custom transports); it is then not closed by
    `aclose()`, `timeouts` is ignored, and the auth headers and full URL go with each request.
    """

    def __init__(self, base_url: str, api_key: str, api_secret: str, user_id: str, *,
                 timeouts: Timeouts | None = None, http: httpx.AsyncClient | None = None,
                 read_retries: int = 1) -> None:
        headers = {"API-KEY": api_key, "API-SECRET": api_secret, "USER-ID": user_id,
                   "Content-Type": "application/json", "Accept": "application/json"}
        super().__init__(timeouts=timeouts, http=http, base_url=base_url.rstrip("/"), headers=headers)
        self._prefix = "" if self._owns_http else base_url.rstrip("/")
        self._request_headers = None if self._owns_http else headers
        self._read_retries = max(0, read_retries)

    def __repr__(self) -> str:  # never the secrets
        return f"ECourierClient(base_url={str(self._http.base_url) or self._prefix!r})"

    # -- orders ------------------------------------------------------------------------------

    async def place_order(self, order: OrderRequest) -> OrderAnswer:
        """POST /order-place-reseller. Never retried: on a timeout or 5xx, ask `track(product_id=
        order.order_code)` or place again with the same `order_code` (eCourier then answers
        ECourierDuplicateOrder if the first one went through).

        Sent: the parameter table's names and types (the API document's sample disagrees with its own
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
                body[name] = as_whole_number(value, name)
        method = order.payment_method.strip().upper()
        if method not in PAYMENT_METHODS:
            raise ValueError(f"payment_method must be one of {', '.join(PAYMENT_METHODS)}")
        body["payment_method"] = method
        data = await self._post("/order-place-reseller", body, idempotent=False)
        tracking = as_text(field_of(data, "ID", "id"))
        if not tracking:
            raise malformed("order accepted without an ID", data)
        return OrderAnswer(tracking_id=tracking, message=as_text(field_of(data, "message")))

    async def cancel_order(self, tracking_id: str, comment: str) -> OrderAnswer:
        """POST /cancel-order {"tracking", "comment"}. Only "Initiated" parcels can be cancelled.
        The ECR id is sent upper-cased without spaces; the comment stripped and cut to the
        documented 255 characters (a long reason should not cost the cancellation)."""
        tracking = _ecr(tracking_id)
        data = await self._post("/cancel-order", {"tracking": tracking, "comment": comment.strip()[:255]},
                                idempotent=False)
        return OrderAnswer(tracking_id=tracking, message=as_text(field_of(data, "message")))

    async def track(self, reference: str | None = None, *, ecr: str | None = None,
                    product_id: str | None = None) -> TrackResult:
        """POST /track. `reference` is what a subscriber typed: an `ECR...` id (any case,
        stray spaces) is sent as `ecr`, anything else as `product_id`. Both keywords may be
        given together, as the API document allows. Keys sent are lower-case (`product_id`, `ecr`),
        as in the API document's request sample.

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
            raise malformed("tracking answer is not an object", data)
        found = data.get("query_data")
        if isinstance(found, str) or not found:
            raise ECourierNotFound(UPSTREAM, "no_data", as_text(found) or "No Data Found", body=data)
        if not isinstance(found, list):
            raise malformed("query_data is neither a list nor a message", data)
        return TrackResult(parcels=tuple(parcel_of(item, data) for item in found))

    # -- reference data ----------------------------------------------------------------------

    async def packages(self) -> list[Package]:
        """POST /packages with an empty JSON object (the API document shows no body; `{}` keeps the
        declared Content-Type true)."""
        items = items_of(await self._post("/packages", {}, idempotent=True))
        return [Package(code=as_text(i.get("package_code")), name=as_text(i.get("package_name")),
                        shipping_charge=as_money(i.get("shipping_charge")), weight=as_text(i.get("weight")),
                        delivery_time=as_text(i.get("delivery_time")), coverage_id=as_text(i.get("coverage_id")),
                        coverage=as_text(i.get("coverage")))
                for i in items]

    async def city_list(self) -> list[NamedValue]:
        """POST /city-list with `{}`."""
        return named_values(await self._post("/city-list", {}, idempotent=True))

    async def thana_list(self, city: str) -> list[NamedValue]:
        """POST /thana-list {"city"}."""
        return named_values(await self._post("/thana-list", {"city": city.strip()}, idempotent=True))

    async def postcode_list(self, city: str, thana: str) -> list[NamedValue]:
        """POST /postcode-list {"city", "thana"}; `value` is the post code."""
        body = {"city": city.strip(), "thana": thana.strip()}
        return named_values(await self._post("/postcode-list", body, idempotent=True))

    async def area_list(self, city: str, thana: str, postcode: str | int) -> list[NamedValue]:
        """POST /area-list {"city", "thana", "postcode"}. The API document contradicts itself: its table
        asks for city and thana, its title and error ("Please select postcode") for a post
        code. Sending all three satisfies either reading."""
        body = {"city": city.strip(), "thana": thana.strip(), "postcode": str(postcode).strip()}
        return named_values(await self._post("/area-list", body, idempotent=True))

    async def branch_list(self) -> list[NamedValue]:
        """POST /branch-list with `{}`; `value` (a number upstream) is the `pick_hub` id, as text."""
        return named_values(await self._post("/branch-list", {}, idempotent=True))

    async def fraud_status(self, number: str) -> FraudStatus:
        """POST /fraud-status-check {"number": "01XXXXXXXXX"}. A read: retried like the lists."""
        data = await self._post("/fraud-status-check", {"number": normalize_mobile(number)}, idempotent=True)
        status = as_text(field_of(data, "customer_status"))
        lowered = status.lower()
        verdict: Literal["warning", "new", "verified", "unknown"] = (
            "warning" if "warning" in lowered else "verified" if "verified" in lowered
            else "new" if "new customer" in lowered else "unknown")
        return FraudStatus(customer_status=status, verdict=verdict, reasons=as_strings(field_of(data, "message")))

    # -- Booster services --------------------------------------------------------------------

    async def booster_sms(self, numbers: Sequence[str], text: str, *, masking: bool = True,
                          title: str = "booster", text_type: str = "text") -> SmsResult:
        """POST /bs-sms. `number` is sent as a flat JSON array of 11-digit numbers (the request
        sample; the table's `[[...]]` is taken as a typo); `service_type` "mask"/"nonmask".
        A partly sent batch (206) is a result with `wrong`; none sent raises ECourierSmsNotSent."""
        body = {"number": [normalize_mobile(n) for n in numbers], "op_title": title,
                "text_type": text_type, "op_body": text, "service_type": "mask" if masking else "nonmask"}
        return sms_result(await self._post("/bs-sms", body, idempotent=False))

    async def otp_sms(self, number: str, text: str, *, masking: bool = True,
                      title: str = "booster", text_type: str = "text") -> SmsResult:
        """POST /bs-top-otp: one SMS, `number` as a single string (unlike /bs-sms)."""
        body = {"number": normalize_mobile(number), "op_title": title, "text_type": text_type,
                "op_body": text, "service_type": "mask" if masking else "nonmask"}
        return sms_result(await self._post("/bs-top-otp", body, idempotent=False))

    async def booster_top_up(self, number: str, amount: int, *, postpaid: bool = False) -> TopUp:
        """POST /bs-top {"number", "amount", "operator_type"}: amount and operator_type (1 prepaid,
        2 postpaid) as JSON integers per the table. Moves money and has no client reference,
        so it is never retried: after a timeout, do not repeat blindly."""
        body = {"number": normalize_mobile(number), "amount": as_whole_number(amount, "amount"),
                "operator_type": 2 if postpaid else 1}
        data = await self._post("/bs-top", body, idempotent=False)
        message = as_text(field_of(data, "message"))
        # The API document spells the key "transcation_id"; accept the correct spelling and, failing
        # both, the id quoted at the end of the message.
        trx = as_text(field_of(data, "transcation_id", "transaction_id"))
        if not trx:
            match = re.search(r"transaction id is\s*(\S+)", message, re.IGNORECASE)
            trx = match.group(1).rstrip(".") if match else ""
        if not trx:
            raise malformed("top-up accepted without a transaction id", data)
        return TopUp(transaction_id=trx, message=message)

    async def booster_top_up_status(self, transaction_id: str) -> TopUp:
        """POST /bs-top-status {"transaction_id"}. `recharged` is eCourier's `success` flag (the
        API document shows no pending state); an unknown id raises ECourierNotFound."""
        trx = transaction_id.strip()
        data = await self._post("/bs-top-status", {"transaction_id": trx}, idempotent=True)
        return TopUp(transaction_id=trx, recharged=as_bool(field_of(data, "success")) is True,
                           message=as_text(field_of(data, "message")))

    # -- transport ---------------------------------------------------------------------------

    async def _post(self, path: str, body: Mapping[str, Any], *, idempotent: bool) -> Any:
        if idempotent:
            return await read_with_retry(lambda: self._post_once(path, body), attempts=1 + self._read_retries,
                                         retry_if=_read_again)
        try:
            return await self._post_once(path, body)
        except UpstreamError as exc:
            # A write whose fate is unknown must not be repeated blindly.
            if not isinstance(exc, (UpstreamConnectError, ECourierBusy)):
                exc.retryable = False
            raise

    async def _post_once(self, path: str, body: Mapping[str, Any]) -> Any:
        response = await send(self._http, UPSTREAM, "POST", self._prefix + path, json=dict(body),
                              headers=self._request_headers)
        return decode_response(response)


def _read_again(exc: BaseException) -> bool:
    """Any retryable error but a timeout: a timeout already spent the USSD budget, and a
    second wait would exceed it."""
    return isinstance(exc, UpstreamError) and exc.retryable and not isinstance(exc, UpstreamTimeout)


# --- input -------------------------------------------------------------------------------

def normalize_mobile(number: str) -> str:
    """"+880 1712-345678", "8801712345678", "1712345678", Bengali digits -> "01712345678".
    Raises ECourierInvalidNumber (without echoing the number: it is personal data)."""
    found = local_number(str(number))
    if found is None:
        raise ECourierInvalidNumber(UPSTREAM, "invalid_number", "not an 11-digit Bangladeshi mobile number")
    return found


def _ecr(value: str) -> str:
    """" ecr ১০২২ 001175478" -> "ECR1022001175478"."""
    return re.sub(r"\s+", "", normalise_digits(value)).upper()

