"""What every upstream client shares: typed errors, one httpx client per process, safe logging.

Integrations import nothing of engine, store or transport (design.md); actions turn these
typed results and errors into flow outcomes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import httpx
import structlog

from ..metrics import UPSTREAM_ERRORS, UPSTREAM_SECONDS, error_label
from .delivery import classify

log = structlog.get_logger("alap.upstream")


class UpstreamError(Exception):
    """An upstream call did not succeed. `retryable` says whether repeating the same call may help.

    `code` is the upstream's own code when it gave one (BDApps "E1318", eCourier "203",
    eCare "LOWBALANCE", HTTP "503"), else a short word of ours ("timeout", "connect", "malformed").
    """

    retryable: bool = False

    def __init__(self, upstream: str, code: str, detail: str = "", *, retryable: bool | None = None,
                 http_status: int | None = None, body: Any = None) -> None:
        self.upstream = upstream
        self.code = code
        self.detail = detail
        self.http_status = http_status
        self.body = body
        if retryable is not None:
            self.retryable = retryable
        # Counted where it is made: every client raises exactly one typed error per failure,
        # including the errors that upstreams report inside HTTP 200 bodies.
        UPSTREAM_ERRORS.labels(upstream, error_label(code)).inc()  # bounded: server/metrics.py
        super().__init__(f"{upstream} {code}: {detail}" if detail else f"{upstream} {code}")


class UpstreamRejected(UpstreamError):
    """The upstream understood the call and refused it (bad input, not allowed, no data)."""


class UpstreamAuthError(UpstreamRejected):
    """Credentials refused (HTTP 401, BDApps E1313...). Never retryable."""


class UpstreamUnavailable(UpstreamError):
    """5xx, maintenance, throttling: the same call may succeed later."""

    retryable = True


class UpstreamTimeout(UpstreamError):
    """No answer: a timeout, or the connection dropped after the request was written (code
    "timeout", "disconnected" or "transport"; server/integrations/delivery.py). The call may
    or may not have taken effect: money calls must ask again with the same idempotency key,
    never assume either way; a message is not sent again."""

    retryable = True


class UpstreamConnectError(UpstreamUnavailable):
    """The request never reached the upstream (connection refused / DNS): safe to retry."""


class UpstreamMalformed(UpstreamError):
    """The answer could not be understood (not JSON, missing fields)."""

    retryable = True


@dataclass(frozen=True)
class Timeouts:
    """Explicit timeouts sized to the USSD budget (a subscriber waits a few seconds at most)."""

    connect: float = 1.0
    read: float = 3.0
    write: float = 1.0
    pool: float = 1.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


def make_http_client(base_url: str = "", *, timeouts: Timeouts | None = None,
                     headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
    """One client per upstream per process, created at start-up and closed at shutdown."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=(timeouts or Timeouts()).httpx(),
        headers=dict(headers or {}),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


async def send(client: httpx.AsyncClient, upstream: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request, turning transport failures into typed errors and logging one line.

    The log line carries method, path, status and latency; never headers, bodies or query
    strings (they hold API keys and passwords).
    """
    started = time.perf_counter()
    outcome = "error"
    status: int | None = None
    try:
        response = await client.request(method, url, **kwargs)
        status = response.status_code
        outcome = "ok"
        return response
    except httpx.HTTPError as exc:
        failure = classify(exc)
        if failure.maybe_delivered:
            raise UpstreamTimeout(upstream, failure.code, failure.detail) from None
        raise UpstreamConnectError(upstream, failure.code, failure.detail) from None
    finally:
        elapsed = time.perf_counter() - started
        UPSTREAM_SECONDS.labels(upstream).observe(elapsed)
        log.info("upstream_call", upstream=upstream, method=method, path=_path_only(url),
                 status=status, outcome=outcome, latency_ms=round(elapsed * 1000, 1))


def _path_only(url: str) -> str:
    return url.split("?", 1)[0]


def json_body(response: httpx.Response, upstream: str) -> Any:
    """Parse a JSON body or raise UpstreamMalformed (several upstreams answer HTML on errors)."""
    try:
        return response.json()
    except ValueError:
        raise UpstreamMalformed(upstream, "malformed", f"HTTP {response.status_code}, body is not JSON",
                                http_status=response.status_code) from None


def raise_for_http_status(response: httpx.Response, upstream: str) -> None:
    """Map non-2xx statuses: 401/403 auth, other 4xx rejected, 5xx unavailable."""
    status = response.status_code
    if status < 400:
        return
    if status in (401, 403):
        raise UpstreamAuthError(upstream, str(status), "credentials refused", http_status=status)
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(upstream, str(status), "upstream unavailable", http_status=status)
    raise UpstreamRejected(upstream, str(status), "request rejected", http_status=status)
