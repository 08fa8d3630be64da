"""A small keep-alive HTTP/1.1 client for one endpoint: POST a JSON body, read the answer.

Every hop ends with one `/ussd/send`; on aiohttp's client that request cost about a sixth of a
worker's CPU under load (request and timer objects, connector bookkeeping, tracing hooks),
against a few microseconds of actual work for a small JSON POST to one host. This client keeps
idle connections to that one origin (plain or TLS) and does only that work.

Failures are the transport codes of server/integrations/delivery.py, decided by whether the
request may have left: `connect` / `connect_timeout` (it never did: safe to send again),
`timeout` and `disconnected` (it was written: it may have been delivered, never sent again).
An idle connection is dropped after `IDLE_SECONDS` (below common servers' keep-alive timeouts),
so a request is not written into a connection the server is closing.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import urlsplit

from .delivery import CONNECT, CONNECT_TIMEOUT, DISCONNECTED, TIMEOUT

IDLE_SECONDS = 15.0
_MAX_HEAD = 16 * 1024
_MAX_BODY = 1024 * 1024


class PostFailed(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


class _Malformed(Exception):
    pass


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            # Without Content-Length or chunks the body ends with the connection.
            parsed = _parse(self.buffer, at_eof=True) if self.buffer else None
            if parsed is not None:
                self.answer.set_result(parsed)
            else:
                self.answer.set_exception(PostFailed(DISCONNECTED, type(exc).__name__ if exc else "closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is None or self.answer.done():
            return
        try:
            parsed = _parse(self.buffer, at_eof=False)
        except _Malformed:
            self.answer.set_exception(PostFailed("malformed", "answer is not HTTP/1.1"))
            self.reusable = False
            return
        if parsed is not None:
            self.answer.set_result(parsed)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _parse(buffer: bytearray, at_eof: bool) -> tuple[int, bytes, bool] | None:
    """(status, body, keep-alive) once the whole answer is in `buffer`, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > _MAX_HEAD:
            raise _Malformed()
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _Malformed()
    status = int(parts[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = parts[0] == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
    start = end + 4
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = bytearray()
        at = start
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(buffer[at:line_end]).split(b";")[0] or b"0", 16)
            if size == 0:
                if buffer.find(b"\r\n", line_end + 2) < 0:  # the (empty) trailer's end
                    return None
                del buffer[:]
                return status, bytes(body), keep_alive
            if len(buffer) < line_end + 2 + size + 2:
                return None
            body += buffer[line_end + 2:line_end + 2 + size]
            at = line_end + 2 + size + 2
    length = headers.get(b"content-length")
    if length is not None:
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise _Malformed()
        if len(buffer) < start + int(length):
            return None
        body = bytes(buffer[start:start + int(length)])
        del buffer[:start + int(length)]
        return status, body, keep_alive
    if status in (204, 304) or 100 <= status < 200:
        del buffer[:start]
        return status, b"", keep_alive
    if not at_eof:  # the body runs until the server closes
        return None
    body = bytes(buffer[start:])
    del buffer[:]
    return status, body, False


def _time_out(answer: asyncio.Future) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


class PostLine:
    """POSTs to one URL's origin. At most `connections` at once; more wait their turn."""

    def __init__(self, base_url: str, connections: int, *, connect_timeout: float = 1.0) -> None:
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.host_header = parts.netloc.rpartition("@")[2]
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._free = asyncio.Semaphore(connections)

    def request_head(self, path: str, content_type: str = "application/json") -> bytes:
        """The fixed part of a POST to `path` (built once by the caller); the length follows."""
        return (f"POST {self.base_path}{path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                f"Content-Type: {content_type}\r\nAccept: */*\r\nContent-Length: ").encode()

    async def post(self, head: bytes, body: bytes, timeout: float) -> tuple[int, bytes]:
        """(HTTP status, body). Raises PostFailed with a delivery.py code."""
        async with self._free:
            conn = await self._connection()
            loop = asyncio.get_running_loop()
            conn.answer = waiting = loop.create_future()
            assert conn.transport is not None
            conn.transport.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
            # The deadline fails the answer's own future (no task cancellation to undo, as
            # asyncio.timeout must): one timer per send, on every hop.
            timer = loop.call_later(timeout, _time_out, waiting)
            try:
                status, answer, keep_alive = await waiting
            except TimeoutError:
                conn.close()
                raise PostFailed(TIMEOUT, "TimeoutError") from None
            except BaseException:
                conn.close()
                raise
            finally:
                timer.cancel()
                conn.answer = None
            if keep_alive and conn.reusable and not conn.closed and not conn.buffer:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()
            return status, answer

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl)
        except TimeoutError:
            raise PostFailed(CONNECT_TIMEOUT, "TimeoutError") from None
        except OSError as exc:
            raise PostFailed(CONNECT, type(exc).__name__) from None
        return conn

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
