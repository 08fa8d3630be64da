"""One rule for "may the other side have received this request?", for every send over HTTP
(BDApps `/ussd/send` through server/integrations/post_line.py, `/sms/send` through aiohttp
in server/integrations/bdapps.py, the SMS gateways and other upstreams through httpx in
server/integrations/base.py).

A request that never left (connection refused, DNS, connect timeout, no pooled connection) is
safe to send again, here or on another route. Once it may have been written, any failure
before a readable answer (a timeout, a dropped or reset connection, a broken answer) means it
may have been delivered: a screen may already be on the phone, an SMS on its way, money moved.
Such a request is never sent again as new; the caller logs it (or asks again with the same
idempotency key).
"""
from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import httpx

# Codes of a transport failure, shared by every client's typed results.
CONNECT = "connect"  # never reached the other side
CONNECT_TIMEOUT = "connect_timeout"  # no connection in time: never reached it either
TIMEOUT = "timeout"  # written, no answer in time
DISCONNECTED = "disconnected"  # written, then the connection was closed or reset
TRANSPORT = "transport"  # written, then anything else went wrong before a readable answer

NEVER_SENT = frozenset({CONNECT, CONNECT_TIMEOUT})


@dataclass(frozen=True)
class TransportFailure:
    code: str
    detail: str  # the exception's class name (never its text: it may carry URLs with secrets)

    @property
    def maybe_delivered(self) -> bool:
        return self.code not in NEVER_SENT


_AIOHTTP: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    ((aiohttp.ClientConnectorError, aiohttp.InvalidURL), CONNECT),
    (aiohttp.ConnectionTimeoutError, CONNECT_TIMEOUT),
    ((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError), DISCONNECTED),
    (TimeoutError, TIMEOUT),  # aiohttp's read and total timeouts (asyncio.TimeoutError)
)
_HTTPX: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    ((httpx.ConnectError, httpx.UnsupportedProtocol, httpx.LocalProtocolError), CONNECT),
    ((httpx.ConnectTimeout, httpx.PoolTimeout), CONNECT_TIMEOUT),
    (httpx.TimeoutException, TIMEOUT),  # read and write timeouts
    ((httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError), DISCONNECTED),
)


def classify(exc: BaseException) -> TransportFailure:
    """The failure of one HTTP request (aiohttp or httpx) as one of the codes above."""
    for kinds, code in (*_AIOHTTP, *_HTTPX):
        if isinstance(exc, kinds):
            return TransportFailure(code, type(exc).__name__)
    return TransportFailure(TRANSPORT, type(exc).__name__)


def never_sent(code: str) -> bool:
    """Whether a result code says the request certainly did not leave (safe to send again)."""
    return code in NEVER_SENT
