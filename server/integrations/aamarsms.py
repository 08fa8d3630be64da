"""AamarSMS outbound SMS client (docs/upstreams.md).

Configuration (read by the wiring, never here): AAMARSMS_BASE_URL (default
https://aamarsms.com), AAMARSMS_USER, AAMARSMS_PASSWORD, AAMARSMS_FROM.

Wire: every endpoint is `GET {base}/<endpoint>?user=..&password=..` answering JSON with a
`response_code` (errors come inside HTTP 200 bodies).

Decisions where the API document is loose:
- Numbers: accepted as 01XXXXXXXXX / 8801XXXXXXXXX / +8801... / "tel: 8801..." and sent as
  8801XXXXXXXXX, the API document's example, without "+" as it asks. A number we cannot normalise
  raises InvalidRecipient before any call; a bulk send with one bad number sends nothing.
- Bengali: the API document has no unicode/type parameter, so text goes as UTF-8 percent-encoded in
  `text` (httpx does this) and the gateway picks the encoding.
- The send response carries no smsid, yet /smsstatus needs one ("910-17XXXXXXX"). We pick one
  up if a body holds `smsid`, else `SmsAccepted.message_ids` is empty and delivery_status() needs
  an id obtained elsewhere (panel, support).
- Bulk: `delivery_status[].Status` 1 = sent, 0 = failed. Some failed -> SmsAccepted with
  `failed` listing them; all failed -> SmsFailed. /otp `status: "Failed"` -> SmsFailed.
- /balance code 106 ("No Credits available") is an answer, not an error: balance 0.

Response codes (send: /api and /otp; status and balance use the subset the API document lists):
  100 ok (110 on /balance)
  101 username empty, 102 password empty, 105 invalid credential -> UpstreamAuthError, not retryable
  103 recipient empty -> InvalidRecipient, not retryable
  104 text empty, 108 text too long, 109 smsid empty -> UpstreamRejected, not retryable
  106 balance / 107 reseller balance not sufficient -> InsufficientBalance, retryable
  anything else -> UpstreamRejected, not retryable
Transport: 401/403 -> UpstreamAuthError; other 4xx -> UpstreamRejected; 5xx/429 ->
UpstreamUnavailable (retryable); non-JSON or missing fields -> UpstreamMalformed.
UpstreamTimeout: the request may have reached AamarSMS and the SMS may have gone out; resending
(here or through DiniSoft) can deliver it twice, so only do it if a duplicate is acceptable.
UpstreamConnectError: the request never left; failing over is safe.

Credentials ride in the query string: base.send logs the path only and
hide_query_in_httpx_logs() strips the query from httpx's own request log.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

import httpx

from server.integrations.base import (
    Timeouts, UpstreamAuthError, UpstreamClient, UpstreamError, UpstreamMalformed, UpstreamRejected,
    hide_query_in_httpx_logs,
)
from server.integrations.sms_parts import (
    DeliveryState, DeliveryStatus, InsufficientBalance, InvalidRecipient, RecipientStatus,
    SmsAccepted, SmsBalance, SmsFailed, invalid_recipient,
    sms_parts,
)
from server.metrics import register_error_codes
from server.msisdn import require_international

UPSTREAM = "aamarsms"
DEFAULT_BASE_URL = "https://aamarsms.com"

# response_code -> (error class, the API document's meaning)
_ERRORS: dict[str, tuple[type[UpstreamError], str]] = {
    "101": (UpstreamAuthError, "Username empty"),
    "102": (UpstreamAuthError, "Password empty"),
    "103": (InvalidRecipient, "Recipient number empty"),
    "104": (UpstreamRejected, "Message text empty"),
    "105": (UpstreamAuthError, "Invalid credential"),
    "106": (InsufficientBalance, "Balance is not sufficient"),
    "107": (InsufficientBalance, "Reseller balance is not sufficient"),
    "108": (UpstreamRejected, "Message text is too long"),
    "109": (UpstreamRejected, "smsid empty"),
}
register_error_codes([*_ERRORS])  # their metric label (server/metrics.py)

_STATES: dict[str, DeliveryState] = {
    "SENT": "sent", "DELIVERED": "delivered", "FAILED": "failed", "PENDING": "pending",
}


class AamarSmsClient(UpstreamClient):
    """One per process; `aclose()` at shutdown (only closes an httpx client it created)."""

    def __init__(self, base_url: str, user: str, password: str, sender: str, *,
                 timeouts: Timeouts | None = None, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(timeouts=timeouts, http=http)
        self._base = base_url.rstrip("/")
        self._auth = {"user": user, "password": password}
        self._sender = sender
        hide_query_in_httpx_logs()

    async def send_bulk(self, to: str | Iterable[str], text: str) -> SmsAccepted:
        """Send `text` to one or many numbers through `/api`."""
        numbers = _numbers([to] if isinstance(to, str) else list(to))
        data = await self._get("/api", {"from": self._sender, "to": ",".join(numbers), "text": text})
        _check(data, "100")
        recipients = _recipients(data.get("delivery_status"), numbers)
        if not any(r.accepted for r in recipients):
            raise SmsFailed(UPSTREAM, "failed", "no recipient was sent", body=data)
        return SmsAccepted(UPSTREAM, _ids(data), sms_parts(text), recipients, _decimal(data.get("campaign_cost")))

    async def send_otp(self, to: str, text: str) -> SmsAccepted:
        """Send one OTP through `/otp` (the gateway answers with Delivered / Failed at once)."""
        (number,) = _numbers([to])
        data = await self._get("/otp", {"from": self._sender, "to": number, "text": text})
        _check(data, "100")
        status = str(data.get("status", ""))
        if status.lower() == "failed":
            raise SmsFailed(UPSTREAM, "failed", "OTP not sent", body=data)
        return SmsAccepted(UPSTREAM, _ids(data), sms_parts(text), (RecipientStatus(number, True, status),),
                           _decimal(data.get("campaign_cost")))

    async def delivery_status(self, smsid: str) -> DeliveryStatus:
        """Ask `/smsstatus` about one smsid ("910-17XXXXXXX")."""
        data = await self._get("/smsstatus", {"smsid": smsid})
        _check(data, "100")
        raw = _field(data, "status")
        if raw is None:
            raise UpstreamMalformed(UPSTREAM, "malformed", "no STATUS in answer", body=data)
        return DeliveryStatus(UPSTREAM, smsid, _STATES.get(str(raw).upper(), "unknown"), str(raw))

    async def balance(self) -> SmsBalance:
        data = await self._get("/balance", {})
        if _code(data) == "106":  # "No Credits available"
            return SmsBalance(UPSTREAM, Decimal(0))
        _check(data, "110")
        # The API document's key is literally "AVAILABLE BALANCE =": match it loosely.
        amount = next((_decimal(v) for k, v in data.items()
                       if "".join(k.split()).rstrip("=").lower() == "availablebalance"), None)
        if amount is None:
            raise UpstreamMalformed(UPSTREAM, "malformed", "no balance in answer", body=data)
        return SmsBalance(UPSTREAM, amount)

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return await self._get_object(UPSTREAM, self._base + path, {**self._auth, **params})


def _numbers(raw: list[str]) -> list[str]:
    if not raw:
        raise invalid_recipient(UPSTREAM, raw)
    out = []
    for item in raw:
        try:
            out.append(require_international(item))
        except ValueError:
            raise invalid_recipient(UPSTREAM, item) from None
    return out


def _code(data: dict[str, Any]) -> str:
    code = data.get("response_code")
    if code is None:
        raise UpstreamMalformed(UPSTREAM, "malformed", "no response_code in answer", body=data)
    return str(code).strip()


def _check(data: dict[str, Any], ok: str) -> None:
    code = _code(data)
    if code == ok:
        return
    cls, meaning = _ERRORS.get(code, (UpstreamRejected, "undocumented response_code"))
    detail = f"{meaning}: {data.get('message', '')}".rstrip(": ")
    raise cls(UPSTREAM, code, detail, body=data)


def _recipients(entries: Any, numbers: list[str]) -> tuple[RecipientStatus, ...]:
    if not isinstance(entries, list):  # no per-number detail: response_code 100 covers all
        return tuple(RecipientStatus(n, True) for n in numbers)
    return tuple(
        RecipientStatus(str(e.get("MSISDN", "")), str(e.get("Status")) == "1", str(e.get("StatusText", "")))
        for e in entries if isinstance(e, dict)
    )


def _ids(data: dict[str, Any]) -> tuple[str, ...]:
    """smsids if the gateway gave any (the API document's send samples carry none)."""
    found = [_field(data, "smsid", "sms_id")]
    entries = data.get("delivery_status")
    if isinstance(entries, list):
        found += [_field(e, "smsid", "sms_id") for e in entries if isinstance(e, dict)]
    return tuple(str(x) for x in found if x not in (None, ""))


def _field(data: dict[str, Any], *names: str) -> Any:
    """Case-insensitive lookup: the API document writes STATUS in samples and status in the table."""
    return next((v for k, v in data.items() if k.lower() in names), None)


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None
