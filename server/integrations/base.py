"""What every upstream client shares: typed errors, one httpx client per process, safe logging,
the base class `UpstreamClient` (constructor, `aclose`, `async with`) and `read_with_retry`.

Integrations import nothing of engine, store or transport (docs/upstreams.md); actions turn
these typed results and errors into flow outcomes.
"""
from __future__ import annotations

import functools
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, TypeVar

import httpx
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

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


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (its CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR), built once
    per process and shared by the upstream clients: loading the CA bundle costs tens of
    milliseconds per client, and a client-side SSLContext may be shared."""
    return httpx.create_ssl_context()


def make_http_client(base_url: str = "", *, timeouts: Timeouts | None = None,
                     headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
    """One client per upstream per process, created at start-up and closed at shutdown."""
    return httpx.AsyncClient(
        base_url=base_url,
        verify=default_ssl_context(),
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


class _DropQuery(logging.Filter):
    """httpx logs every request at INFO with its full URL; eCare, AamarSMS and DiniSoft carry
    passwords and API keys in that query string, so cut it off before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_no_query(arg) for arg in record.args)
        return True


def _no_query(arg: Any) -> Any:
    if isinstance(arg, httpx.URL):
        return str(arg.copy_with(query=None))
    if isinstance(arg, str) and "://" in arg and "?" in arg:
        return _path_only(arg)
    return arg


def hide_query_in_httpx_logs() -> None:
    """Install the query-stripping filter on httpx's logger once (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _DropQuery) for f in logger.filters):
        logger.addFilter(_DropQuery())


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


# --- the client every upstream shares -------------------------------------------------------

T = TypeVar("T")


class UpstreamClient:
    """One instance per upstream per process; close with `aclose()` (or `async with`).

    `http` lets a caller share an httpx client (tests, custom transports): it is then not
    closed by `aclose()` and `timeouts` is ignored."""

    def __init__(self, *, timeouts: Timeouts | None = None, http: httpx.AsyncClient | None = None,
                 base_url: str = "", headers: Mapping[str, str] | None = None) -> None:
        self._owns_http = http is None
        self._http = http or make_http_client(base_url, timeouts=timeouts, headers=headers)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _get_object(self, upstream: str, url: str, params: Mapping[str, str]) -> dict[str, Any]:
        """One GET whose answer must be a JSON object: HTTP errors mapped, else UpstreamMalformed."""
        response = await send(self._http, upstream, "GET", url, params=dict(params))
        raise_for_http_status(response, upstream)
        data = json_body(response, upstream)
        if not isinstance(data, dict):
            raise UpstreamMalformed(upstream, "malformed", "answer is not a JSON object",
                                    http_status=response.status_code)
        return data

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def is_transient(exc: BaseException) -> bool:
    """A refused connection or a 5xx/429: the request was not served, asking again may work."""
    return isinstance(exc, (UpstreamConnectError, UpstreamUnavailable))


async def read_with_retry(call: Callable[[], Awaitable[T]], *, attempts: int = 2,
                          retry_if: Callable[[BaseException], bool] = is_transient) -> T:
    """Idempotent reads only: up to `attempts` calls, again at once while `retry_if(error)`;
    the last error is raised as it is. Money calls never come here (they repeat under the
    same idempotency key, from the ledger)."""
    async for attempt in AsyncRetrying(stop=stop_after_attempt(max(1, attempts)),
                                       retry=retry_if_exception(retry_if), reraise=True):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")
