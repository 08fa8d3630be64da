"""Reading eCourier's answers: the error envelopes (HTTP 200 bodies included) mapped by
errors.ERROR_RULES, and the typed results of models.py from lenient JSON."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from server.integrations.base import (
    UpstreamAuthError, UpstreamMalformed, UpstreamRejected, UpstreamUnavailable, json_body, raise_for_http_status,
)

from .errors import ERROR_RULES, UPSTREAM
from .models import NamedValue, Parcel, SmsResult, StatusEvent
from .values import DHAKA, as_bool, as_int, as_list, as_money, as_strings, as_text, as_time


def decode_response(response: httpx.Response) -> Any:
    try:
        data = response.json()
    except ValueError:
        raise_for_http_status(response, UPSTREAM)  # an HTML error page keeps its HTTP meaning
        return json_body(response, UPSTREAM)  # 2xx but not JSON: raises UpstreamMalformed
    raise_for_envelope(data, response.status_code)
    raise_for_http_status(response, UPSTREAM)  # JSON we do not recognise on a 4xx/5xx
    return data


def raise_for_envelope(data: Any, http_status: int) -> None:
    """Raise the typed error an eCourier body describes; return if it describes success."""
    if not isinstance(data, dict):
        return  # bare lists (packages, cities) only come with success
    errors = as_strings(data.get("errors"))
    code = as_int(data.get("response_code"))
    success = as_bool(data.get("success"))
    failed = bool(errors) or success is False or (code is not None and code >= 300) or http_status >= 400
    if not failed:
        return
    if not errors and code is None and success is None:
        return  # not an eCourier envelope; the HTTP status decides
    texts = errors or as_strings(data.get("message")) + as_strings(data.get("query_data"))
    detail = "; ".join(texts)
    lowered = detail.lower()
    status = code if code not in (None, 200) else (http_status if http_status >= 300 else None)
    for needle, cls, word in ERROR_RULES:
        if needle in lowered:
            raise cls(UPSTREAM, str(status) if status else word, detail, http_status=http_status, body=data)
    status = status or 400
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(UPSTREAM, str(status), detail, http_status=http_status, body=data)
    if http_status == 401 or (errors and status == 401):
        raise UpstreamAuthError(UPSTREAM, "401", detail, http_status=http_status, body=data)
    raise UpstreamRejected(UPSTREAM, str(status), detail or "rejected", http_status=http_status, body=data)


def malformed(detail: str, data: Any) -> UpstreamMalformed:
    return UpstreamMalformed(UPSTREAM, "malformed", detail, body=data)


def field_of(data: Any, *names: str) -> Any:
    if isinstance(data, dict):
        for name in names:
            if data.get(name) is not None:
                return data[name]
    return None


def items_of(data: Any) -> list[dict[str, Any]]:
    """A list body, bare or wrapped as {"success": true, "message"|"data": [...]}."""
    if isinstance(data, dict):
        data = field_of(data, "message", "data")
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise malformed("expected a list of objects", data)
    return data


def named_values(data: Any) -> list[NamedValue]:
    out = []
    for item in items_of(data):
        name, value = as_text(item.get("name")), as_text(item.get("value"))
        out.append(NamedValue(name=name or value, value=value or name))
    return out


def sms_result(data: Any) -> SmsResult:
    return SmsResult(message=as_text(field_of(data, "message")), wrong=as_strings(field_of(data, "wrong")))


def parcel_of(item: Any, data: Any) -> Parcel:
    if not isinstance(item, dict):
        raise malformed("a tracking entry is not an object", data)
    tracking = as_text(field_of(item, "REFID", "refid", "ecr"))
    if not tracking:
        raise malformed("a tracking entry has no REFID", data)
    history = tuple(sorted((event_of(e) for e in as_list(item.get("status"))),
                           key=lambda e: e.at or datetime.min.replace(tzinfo=DHAKA), reverse=True))
    return Parcel(
        tracking_id=tracking, product_id=as_text(item.get("product_id")),
        status=history[0] if history else None, history=history,
        company=as_text(item.get("company")), recipient_name=as_text(item.get("r_name")),
        recipient_mobile=as_text(item.get("r_mobile")), recipient_address=as_text(item.get("r_address")),
        recipient_area=as_text(item.get("r_area")), parcel_type=as_text(item.get("r_type")),
        booked_at=as_time(item.get("r_time")), agent=as_text(item.get("agent")),
        payment_method=as_text(item.get("paymentmethod")), payment_status=as_text(item.get("paymentclear")),
        delivery_timing=as_text(item.get("r_timing")), coverage=as_text(item.get("r_coverage")),
        weight=as_text(item.get("r_weight")), product_price=as_money(item.get("product_price")),
        shipping_price=as_money(item.get("shipping_price")), cod=as_money(item.get("cod")),
    )


def event_of(raw: Any) -> StatusEvent:
    """["Delivered", "comment", "2017-01-20 12:04:55"]; also a dict or a short list."""
    if isinstance(raw, dict):
        parts = [raw.get("status"), raw.get("comment"), field_of(raw, "time", "date", "created_at")]
    else:
        parts = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    status, comment, when = (parts + [None, None, None])[:3]
    return StatusEvent(status=as_text(status), comment=as_text(comment), at=as_time(when), time_text=as_text(when))
