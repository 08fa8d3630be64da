"""The BDApps MT client: `/ussd/send` (and later `/sms/send`).

It is on every hop's path, so it uses one pooled keep-alive aiohttp session per process.
A send is retried only when it cannot have been delivered twice or the gateway says so:
retryable BDApps codes (appendix A) and connections that were never made. A timeout after
the request was written is logged and not retried: the screen may already be on the phone.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import structlog

from .codes import SUCCESS, is_retryable

log = structlog.get_logger("alap.bdapps")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: str  # BDApps statusCode, or "timeout" / "connect" / "http_<n>" / "malformed"
    detail: str = ""
    attempts: int = 1
    request_id: str | None = None


class BdappsGateway:
    def __init__(self, base_url: str, app_id: str, password: str, session: aiohttp.ClientSession,
                 *, attempts: int = 3, backoff: float = 0.1, timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.password = password
        self.http = session
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)

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
        return await self._post("/ussd/send", body, session_id=session_id)

    async def _post(self, path: str, body: dict[str, Any], **log_fields: Any) -> SendResult:
        payload = msgspec.json.encode(body)
        url = self.base_url + path
        result = SendResult(False, "unsent")
        for attempt in range(1, self.attempts + 1):
            started = time.perf_counter()
            result = await self._post_once(url, payload, attempt)
            latency = round((time.perf_counter() - started) * 1000, 1)
            if result.ok:
                log.debug("bdapps_send", path=path, status_code=result.status_code, attempt=attempt,
                          latency_ms=latency, **log_fields)
                return result
            retryable = is_retryable(result.status_code) or result.status_code == "connect"
            log.warning("bdapps_send_failed", path=path, status_code=result.status_code, detail=result.detail,
                        attempt=attempt, retryable=retryable, latency_ms=latency, **log_fields)
            if not retryable or attempt == self.attempts:
                return result
            await asyncio.sleep(self.backoff * attempt)
        return result

    async def _post_once(self, url: str, payload: bytes, attempt: int) -> SendResult:
        try:
            async with self.http.post(url, data=payload, timeout=self.timeout,
                                      headers={"Content-Type": "application/json"}) as response:
                raw = await response.read()
                if response.status >= 400:
                    return SendResult(False, f"http_{response.status}", attempts=attempt)
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
            return SendResult(False, "connect", type(exc).__name__, attempt)
        except asyncio.TimeoutError:
            return SendResult(False, "timeout", "no answer in time", attempt)
        except aiohttp.ClientError as exc:
            return SendResult(False, "transport", type(exc).__name__, attempt)
        try:
            answer = msgspec.json.decode(raw)
            code = str(answer.get("statusCode", ""))
        except (msgspec.DecodeError, AttributeError):
            return SendResult(False, "malformed", "answer is not a JSON object", attempt)
        return SendResult(code == SUCCESS, code, str(answer.get("statusDetail", ""))[:200], attempt,
                          answer.get("requestId"))
