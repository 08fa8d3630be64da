"""DiniSoft outbound SMS client (API v1.03; docs/upstreams.md).

Configuration (read by the wiring, never here): DINISOFT_BASE_URL (default
https://sms.dinisoftbd.com:7790), DINISOFT_API_KEY, DINISOFT_SECRET_KEY, DINISOFT_CALLER_ID.
The balance check lives on another host and path and takes an account name instead of keys, so
it has its own keyword arguments `balance_url` and `client_name` (suggested env names:
DINISOFT_BALANCE_URL, DINISOFT_CLIENT_NAME; not read by config.py yet).

Wire: `GET {base}/sendtext?apikey&secretkey&callerID&toUser&messageContent` and
`GET {base}/getstatus?apikey&secretkey&messageid`, answering JSON whose `Status` (a string,
accepted as a number too) decides; `Text` is informative only (the API document spells ACCEPTD and
Acceptd). Balance answers plain text ("10.000000").

Decisions where the API document is loose:
- Numbers: accepted as 01XXXXXXXXX / 8801XXXXXXXXX / +8801... / "tel: 8801..." and sent in
  `toUser` as 8801XXXXXXXXX (the API document shows no format; this is the country-code form BD gateways
  take without "+"). Unusable numbers raise InvalidRecipient before any call.
- Bengali: no unicode parameter is documented; text goes UTF-8 percent-encoded in messageContent.
- Status 0 without a Message_ID (the API document's "Acceptd" row) is still accepted, with no id:
  raising would invite a resend of a message that went out.
- getstatus Status 1 "request failed" sits with PENDING/SENT/DELIVRD in the API document's table, so it
  is read as the message's state (failed), not as an error of the query.
- getstatus 114 also means "already queried": once a final state has been read, store it;
  asking again is rejected.

Status codes:
  0 ACCEPTD (sendtext) / DELIVRD (getstatus); getstatus 2 PENDING, 4 SENT, 1 failed
  109 user not provided/deleted, 108 wrong password, 5400 source IP not allowed,
  -42 authorization failed -> UpstreamAuthError, not retryable
  114 content / message id missing or invalid -> UpstreamRejected, not retryable
  101 internal server error -> UpstreamUnavailable, retryable
  1 request failed (sendtext) -> SmsFailed, not retryable (nothing sent; failover is safe)
  anything else -> UpstreamRejected, not retryable
Transport: 401/403 auth, other 4xx rejected, 5xx/429 unavailable (retryable), non-JSON malformed.
UpstreamTimeout: DiniSoft may have accepted the message; resending (here or via AamarSMS) can
deliver it twice. UpstreamConnectError: never reached, failing over is safe.

Credentials ride in the query string: base.send logs the path only and
hide_query_in_httpx_logs() strips the query from httpx's own request log.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import httpx

from server.integrations.base import (
    Timeouts, UpstreamAuthError, UpstreamClient, UpstreamError, UpstreamMalformed, UpstreamRejected,
    UpstreamUnavailable, hide_query_in_httpx_logs, raise_for_http_status, send,
)
from server.integrations.sms_parts import (
    DeliveryState, DeliveryStatus, RecipientStatus, SmsAccepted, SmsBalance, SmsFailed,
    invalid_recipient, sms_parts,
)
from server.metrics import register_error_codes
from server.msisdn import require_international

UPSTREAM = "dinisoft"
DEFAULT_BASE_URL = "https://sms.dinisoftbd.com:7790"
BALANCE_PATH = "/login/sms/smsConfiguration/smsClientBalance.jsp"
DEFAULT_BALANCE_URL = "https://sms.dinisoftbd.com" + BALANCE_PATH

_ERRORS: dict[str, tuple[type[UpstreamError], str]] = {
    "109": (UpstreamAuthError, "user not provided or deleted"),
    "108": (UpstreamAuthError, "wrong password or not provided"),
    "5400": (UpstreamAuthError, "source IP not allowed"),
    "-42": (UpstreamAuthError, "authorization failed"),
    "114": (UpstreamRejected, "content or message id missing, invalid or already queried"),
    "101": (UpstreamUnavailable, "internal server error"),
    "1": (SmsFailed, "request failed"),
}
register_error_codes([*_ERRORS, "no_client_name"])  # their metric label (server/metrics.py)

_STATES: dict[str, DeliveryState] = {"0": "delivered", "1": "failed", "2": "pending", "4": "sent"}


class DiniSoftClient(UpstreamClient):
    """One per process; `aclose()` at shutdown (only closes an httpx client it created)."""

    def __init__(self, base_url: str, api_key: str, secret_key: str, caller_id: str, *,
                 timeouts: Timeouts | None = None, http: httpx.AsyncClient | None = None,
                 balance_url: str = DEFAULT_BALANCE_URL, client_name: str | None = None) -> None:
        super().__init__(timeouts=timeouts, http=http)
        self._base = base_url.rstrip("/")
        self._auth = {"apikey": api_key, "secretkey": secret_key}
        self._caller_id = caller_id
        self._balance_url = balance_url
        self._client_name = client_name
        hide_query_in_httpx_logs()

    async def send_text(self, to: str, text: str) -> SmsAccepted:
        try:
            number = require_international(to)
        except ValueError:
            raise invalid_recipient(UPSTREAM, to) from None
        data = await self._get("/sendtext", {"callerID": self._caller_id, "toUser": number,
                                             "messageContent": text})
        status = _status(data)
        if status != "0":
            _raise(status, data)
        message_id = str(data.get("Message_ID") or "")
        return SmsAccepted(UPSTREAM, (message_id,) if message_id else (), sms_parts(text),
                           (RecipientStatus(number, True, str(data.get("Text", ""))),))

    async def get_status(self, message_id: str) -> DeliveryStatus:
        data = await self._get("/getstatus", {"messageid": message_id})
        status = _status(data)
        state = _STATES.get(status)
        if state is None:
            _raise(status, data)
        return DeliveryStatus(UPSTREAM, message_id, state, str(data.get("Text", "")),
                              _epoch_ms(data.get("Delivery Time")))

    async def balance(self) -> SmsBalance:
        if not self._client_name:
            raise UpstreamAuthError(UPSTREAM, "no_client_name", "client_name is not configured")
        response = await send(self._http, UPSTREAM, "GET", self._balance_url,
                              params={"client": self._client_name})
        raise_for_http_status(response, UPSTREAM)
        try:
            return SmsBalance(UPSTREAM, Decimal(response.text.strip()))
        except InvalidOperation:
            raise UpstreamMalformed(UPSTREAM, "malformed", "balance is not a number",
                                    http_status=response.status_code) from None

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return await self._get_object(UPSTREAM, self._base + path, {**self._auth, **params})


def _status(data: dict[str, Any]) -> str:
    status = data.get("Status")
    if status is None:
        raise UpstreamMalformed(UPSTREAM, "malformed", "no Status in answer", body=data)
    return str(status).strip()


def _raise(status: str, data: dict[str, Any]) -> NoReturn:
    cls, meaning = _ERRORS.get(status, (UpstreamRejected, "undocumented Status"))
    raise cls(UPSTREAM, status, f"{meaning} ({data.get('Text', '')})", body=data)


def _epoch_ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
