"""The BDApps MT client: `/ussd/send` and `/sms/send`.

It is on every hop's path, so it uses one pooled keep-alive aiohttp session per process
(`gateway_session`, for `/sms/send`) and, for `/ussd/send`, a small keep-alive client of its
own (server/integrations/post_line.py); everything a send needs but its body is built once.
A send is retried only when it cannot have been delivered twice or the gateway says so:
retryable BDApps codes (appendix A) and requests that never left. A timeout or a dropped
connection after the request was written is logged and not retried: the screen may already be
on the phone (one rule for USSD and SMS: server/integrations/delivery.py).

A screen the gateway refuses with a retryable code is sent again up to 5 more times, the waits
doubling from 50 ms, as long as the next attempt starts within `RETRY_BUDGET` of the first:
the subscriber is waiting for it, and a run of refusals (5% of sends refused in the soak,
bench/soak.py) must not cost a screen.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import msgspec
import structlog

from ..metrics import observe_upstream
from .bdapps_codes import SUCCESS, is_retryable
from .delivery import classify, never_sent
from .post_line import PostFailed, PostLine
from .sms_parts import is_gsm7

log = structlog.get_logger("alap.bdapps")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: str  # BDApps statusCode, or "timeout" / "connect" / "http_<n>" / "malformed"
    detail: str = ""
    attempts: int = 1
    request_id: str | None = None


# --- /sms/send results ------------------------------------------------------------------------

SmsOutcome = Literal["accepted", "rate_limited", "daily_limit", "retryable", "ambiguous", "failed"]

SMS_RATE_LIMITED = "E1318"  # transactions per second exceeded
SMS_DAILY_LIMITED = "E1319"  # transactions per day exceeded
# Retryable and certainly not sent (appendix A): delivery failed, temporary error, balance.
SMS_RETRYABLE = frozenset({"E1602", "E1603", "E1326"})

SMS_ENCODING_TEXT = "0"
SMS_ENCODING_BENGALI = "16"


def sms_encoding(message: str) -> str:
    """"0" (Text) when the message fits GSM-7/ASCII, "16" (Bengali/UCS-2) otherwise."""
    return SMS_ENCODING_TEXT if is_gsm7(message) else SMS_ENCODING_BENGALI


def sms_outcome(code: str) -> SmsOutcome:
    """Map a BDApps statusCode (or one of our transport words) to a typed outcome.

    "ambiguous" means the gateway may have taken the message: never resend it anywhere.
    """
    if code == SUCCESS:
        return "accepted"
    if code == SMS_RATE_LIMITED:
        return "rate_limited"
    if code == SMS_DAILY_LIMITED:
        return "daily_limit"
    if code in SMS_RETRYABLE or never_sent(code) or (code.startswith("http_5")):
        return "retryable"
    if code in ("timeout", "disconnected", "transport", "malformed"):
        return "ambiguous"
    return "failed"


@dataclass(frozen=True)
class SmsDestinationResponse:
    address: str  # as the gateway wrote it ("tel : 880..." included), stripped
    status_code: str
    detail: str = ""
    message_id: str | None = None
    timestamp: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code == SUCCESS

    @property
    def address_key(self) -> str:
        """The address without any whitespace, to match it against what was requested."""
        return "".join(self.address.split())


@dataclass(frozen=True)
class SmsSendResult:
    """The answer to one `/sms/send`.

    `outcome` is the typed reading of `status_code`: for a request the gateway accepted as a
    whole (S1000) but refused for the (single) destination, the destination's code decides.
    `status_code` is the BDApps code, or "connect" / "connect_timeout" (never reached: safe to
    send elsewhere),
    "http_<n>", "timeout" / "disconnected" / "transport" / "malformed" (the gateway may
    have taken the message: outcome "ambiguous").
    """

    outcome: SmsOutcome
    status_code: str
    detail: str = ""
    request_id: str | None = None
    destinations: tuple[SmsDestinationResponse, ...] = ()
    encoding: str = SMS_ENCODING_TEXT
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.outcome == "accepted"

    @property
    def retryable(self) -> bool:
        return self.outcome in ("rate_limited", "daily_limit", "retryable")

    @property
    def message_ids(self) -> tuple[str, ...]:
        """Message ids of accepted destinations; the requestId when the gateway gave none
        (delivery reports carry the requestId, which equals the messageId in the API document)."""
        ids = tuple(d.message_id for d in self.destinations if d.ok and d.message_id)
        if not ids and self.ok and self.request_id:
            return (self.request_id,)
        return ids


RETRY_BUDGET = 2.0  # s from a screen's first attempt within which another may start


def gateway_session(connections: int) -> aiohttp.ClientSession:
    """The keep-alive aiohttp client for BDApps' `/sms/send`. No cookie jar (BDApps sets no cookies,
    and aiohttp consults its jar on every request and answer), and no compression asked for,
    so none to undo."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=30),
                                 cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                 skip_auto_headers=("Accept-Encoding",))


class BdappsGateway:
    def __init__(self, base_url: str, app_id: str, password: str, session: aiohttp.ClientSession,
                 *, attempts: int = 6, backoff: float = 0.05, timeout: float = 3.0,
                 retry_budget: float = RETRY_BUDGET, connections: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.password = password
        self.http = session
        self.attempts = attempts
        self.backoff = backoff
        self.retry_budget = retry_budget
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)
        # /ussd/send, on every hop: a keep-alive client of its own (server/integrations/post_line.py).
        self.line = PostLine(self.base_url, connections)
        self._ussd_head = self.line.request_head("/ussd/send")

    async def aclose(self) -> None:
        await self.line.aclose()

    async def send_ussd(self, session_id: str, destination: str, message: str, operation: str,
                        encoding: str) -> SendResult:
        body = {
            "applicationId": self.app_id,
            "password": self.password,
            "version": "1.0",
            "sessionId": session_id,
            "ussdOperation": operation,
            "destinationAddress": destination,
            "message": message,
            "encoding": encoding,
        }
        return await self._post("/ussd/send", self._ussd_head, body, session_id=session_id)

    async def _post(self, path: str, head: bytes, body: dict[str, Any], **log_fields: Any) -> SendResult:
        payload = msgspec.json.encode(body)
        result = SendResult(False, "unsent")
        first = time.perf_counter()
        for attempt in range(1, self.attempts + 1):
            started = time.perf_counter()
            result = await self._post_once(head, payload, attempt)
            observe_upstream("bdapps", time.perf_counter() - started, None if result.ok else result.status_code)
            latency = round((time.perf_counter() - started) * 1000, 1)
            if result.ok:
                log.debug("bdapps_send", path=path, status_code=result.status_code, attempt=attempt,
                          latency_ms=latency, **log_fields)
                return result
            retryable = is_retryable(result.status_code) or never_sent(result.status_code)
            log.warning("bdapps_send_failed", path=path, status_code=result.status_code, detail=result.detail,
                        attempt=attempt, retryable=retryable, latency_ms=latency, **log_fields)
            delay = self.backoff * 2 ** (attempt - 1)
            if (not retryable or attempt == self.attempts
                    or time.perf_counter() + delay - first > self.retry_budget):
                return result
            await asyncio.sleep(delay)
        return result

    async def _post_once(self, head: bytes, payload: bytes, attempt: int) -> SendResult:
        try:
            status, raw = await self.line.post(head, payload, self.timeout.total or 3.0)
        except PostFailed as exc:
            return SendResult(False, exc.code, exc.detail, attempt)
        if status >= 400:
            return SendResult(False, f"http_{status}", attempts=attempt)
        try:
            answer = msgspec.json.decode(raw)
            code = str(answer.get("statusCode", ""))
        except (msgspec.DecodeError, AttributeError):
            return SendResult(False, "malformed", "answer is not a JSON object", attempt)
        return SendResult(code == SUCCESS, code, str(answer.get("statusDetail", ""))[:200], attempt,
                          answer.get("requestId"))

    # --- /sms/send --------------------------------------------------------------------------

    async def send_sms(self, destinations: list[str], message: str, *, source_address: str | None = None,
                       delivery_report: bool = True, attempts: int = 1) -> SmsSendResult:
        """POST `/sms/send`. Destinations go byte for byte (masked ids included).

        One attempt by default: the caller (the outbound messaging layer) decides on throttling
        and failover. With `attempts` > 1 only failures that certainly did not send (connection
        refused, 5xx, E1602/E1603/E1326) are repeated here, never a timeout.
        """
        if not destinations:
            raise ValueError("send_sms needs at least one destination")
        encoding = sms_encoding(message)
        body: dict[str, Any] = {
            "applicationId": self.app_id,
            "password": self.password,
            "version": "1.0",
            "destinationAddresses": list(destinations),
            "message": message,
            "encoding": encoding,
            "deliveryStatusRequest": "1" if delivery_report else "0",
        }
        if source_address:
            body["sourceAddress"] = source_address
        payload = msgspec.json.encode(body)
        url = self.base_url + "/sms/send"
        result = SmsSendResult("failed", "unsent", encoding=encoding)
        for attempt in range(1, max(1, attempts) + 1):
            started = time.perf_counter()
            result = await self._sms_once(url, payload, encoding, attempt)
            observe_upstream("bdapps", time.perf_counter() - started, None if result.ok else result.status_code)
            latency = round((time.perf_counter() - started) * 1000, 1)
            fields = dict(path="/sms/send", status_code=result.status_code, outcome=result.outcome,
                          attempt=attempt, latency_ms=latency, destinations=len(destinations),
                          request_id=result.request_id)
            if result.ok:
                log.debug("bdapps_send", **fields)
                return result
            log.warning("bdapps_send_failed", detail=result.detail, **fields)
            if result.outcome != "retryable" or attempt >= attempts:
                return result
            await asyncio.sleep(self.backoff * attempt)
        return result

    async def _sms_once(self, url: str, payload: bytes, encoding: str, attempt: int) -> SmsSendResult:
        def failed(code: str, detail: str) -> SmsSendResult:
            return SmsSendResult(sms_outcome(code), code, detail, encoding=encoding, attempts=attempt)

        try:
            async with self.http.post(url, data=payload, timeout=self.timeout,
                                      headers={"Content-Type": "application/json"}) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            failure = classify(exc)
            return failed(failure.code, failure.detail)
        if status >= 400:
            return failed(f"http_{status}", f"gateway answered HTTP {status}")
        try:
            answer = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            answer = None
        if not isinstance(answer, dict):
            return failed("malformed", "answer is not a JSON object")
        return parse_sms_answer(answer, encoding, attempt)


def _get(obj: dict[str, Any], *names: str) -> Any:
    """Case- and spelling-tolerant field lookup (the API document writes statusCode, StatusCode,
    DesinationResponses...)."""
    wanted = {n.lower() for n in names}
    for key, value in obj.items():
        if isinstance(key, str) and key.strip().lower() in wanted:
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _destination_entries(answer: dict[str, Any]) -> list[dict[str, Any]]:
    entries = _get(answer, "destinationResponses", "desinationResponses", "destinationResponse")
    if isinstance(entries, dict):  # {"DestinationResponse": [...]} in the API document's table
        entries = _get(entries, "destinationResponse", "destinationResponses")
        if isinstance(entries, dict):
            entries = [entries]
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict)]


def parse_sms_answer(answer: dict[str, Any], encoding: str = SMS_ENCODING_TEXT,
                     attempt: int = 1) -> SmsSendResult:
    """Read a `/sms/send` answer liberally: key case, "tel : 880..." addresses with stray
    spaces, numbers where strings are expected, a missing destination list."""
    code = _text(_get(answer, "statusCode")) or "malformed"
    detail = (_text(_get(answer, "statusDetail")) or "")[:200]
    request_id = _text(_get(answer, "requestId"))
    destinations = tuple(
        SmsDestinationResponse(
            address=_text(_get(e, "address")) or "",
            status_code=_text(_get(e, "statusCode")) or code,
            detail=(_text(_get(e, "statusDetail")) or "")[:200],
            message_id=_text(_get(e, "messageId")),
            timestamp=_text(_get(e, "timeStamp")),
        )
        for e in _destination_entries(answer)
    )
    if code == "malformed":
        return SmsSendResult("ambiguous", code, "answer has no statusCode", request_id, destinations,
                             encoding, attempt)
    outcome = sms_outcome(code)
    if outcome == "accepted" and destinations and not any(d.ok for d in destinations):
        # Accepted as a request, refused for every destination: the destination's code decides.
        first = destinations[0]
        return SmsSendResult(sms_outcome(first.status_code), first.status_code, first.detail or detail,
                             request_id, destinations, encoding, attempt)
    return SmsSendResult(outcome, code, detail, request_id, destinations, encoding, attempt)
