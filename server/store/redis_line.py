"""The store's script calls on a single Redis node: one pipelined connection per worker.

Every hop runs two or three scripts (claim, commit, sometimes lock or release). Through
redis-py's client each call also pays for the pool's lock and liveness probe, the retry
wrapper, the observability hooks and a task per socket write; and every call is a write that
wakes Redis, which the scheduler mostly runs on the worker's own core (README, Performance).
A script call needs none of that:

- the calls made in one turn of the event loop go out in one write (auto-pipelining): under
  load, several hops' claims and commits reach Redis together and their replies come back in
  one read, so Redis wakes, reads and writes once for all of them;
- replies come back in the order the commands went out, so a reader task hands each caller
  its own; a caller that gave up (timeout, cancellation) has its replies read and dropped,
  never given to the next caller;
- a retry is not wanted: the dedupe record already makes BDApps' own redelivery safe, and a
  re-sent claim whose first copy ran would be taken for a duplicate (server/store/base.py);
- each call waits at most `timeout`. A connection that answered nothing for a whole `timeout`
  while calls waited (a hung or unreachable Redis) is dropped and every call waiting on it
  fails; the next call reconnects, as it does after Redis closed the connection (a restart).

Redis runs one command at a time whatever the number of connections, so one is enough; a
large reply (an expiry sweep's chunk) delays the hops behind it no more than it delays Redis.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Sequence

import hiredis

from redis._parsers.hiredis import _AsyncHiredisParser
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = Sequence[Any]


class _Call:
    """One caller's commands: how many replies it waits for, and the future they go to."""
    __slots__ = ("count", "future", "replies")

    def __init__(self, count: int, future: asyncio.Future) -> None:
        self.count = count
        self.future = future
        self.replies: list[Any] = []


class _Link:
    """One open connection: what was sent and not yet answered, and its reader task."""

    def __init__(self, conn: AbstractConnection) -> None:
        self.conn = conn
        self.waiting: deque[_Call] = deque()
        self.outbox: list[bytes] = []
        self.flushing = False
        self.answered_at = time.monotonic()  # the last reply (or the connection's opening)
        self.reader: asyncio.Task | None = None
        self.broken: BaseException | None = None


class RedisLine:
    def __init__(self, pool: ConnectionPool, timeout: float) -> None:
        options = dict(pool.connection_kwargs)
        options["socket_timeout"] = None  # each call is timed below
        self._make = lambda: pool.connection_class(**options)
        self.timeout = timeout
        self._link: _Link | None = None
        self._opening: asyncio.Lock | None = None

    async def call(self, *commands: Command) -> list[Any]:
        """Send the commands (with the other calls of this turn of the event loop, in one write)
        and return their replies in order. An error reply is returned as its exception
        (ResponseError, NoScriptError); a transport failure or timeout raises."""
        link = self._link
        if link is None or link.broken is not None:
            link = await self._open()
        loop = asyncio.get_running_loop()
        call = _Call(len(commands), loop.create_future())
        link.waiting.append(call)
        link.outbox.append(_packed(commands))
        if not link.flushing:
            link.flushing = True
            loop.call_soon(self._flush, link)
        # One timer that fails this call's future: cheaper than asyncio.timeout (a task
        # cancellation) on two or three calls a hop.
        timer = loop.call_later(self.timeout, self._expire, link, call)
        try:
            return await call.future
        finally:
            timer.cancel()

    def _expire(self, link: _Link, call: _Call) -> None:
        if call.future.done():
            return
        error = RedisTimeoutError("Timeout reading from Redis")
        call.future.set_exception(error)
        if time.monotonic() - link.answered_at >= self.timeout:  # nothing came back at all
            self._break(link, error)

    async def _open(self) -> _Link:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:  # callers arriving while it connects share the connection
            link = self._link
            if link is not None and link.broken is None:
                return link
            conn = self._make()
            try:
                async with asyncio.timeout(self.timeout):
                    await conn.connect()
            except BaseException as exc:
                await conn.disconnect(nowait=True)
                if isinstance(exc, TimeoutError):
                    raise RedisTimeoutError("Timeout connecting to Redis") from None
                raise
            link = _Link(conn)
            link.reader = asyncio.create_task(self._read(link))
            self._link = link
            return link

    def _flush(self, link: _Link) -> None:
        link.flushing = False
        if link.broken is not None or not link.outbox:
            return
        data = b"".join(link.outbox)  # a single item is returned as it is, not copied
        link.outbox.clear()
        try:
            link.conn._writer.write(data)  # type: ignore[union-attr]
        except Exception as exc:  # the transport is closing: everyone waiting fails
            self._break(link, RedisConnectionError(f"Error writing to Redis: {exc}"))

    async def _read(self, link: _Link) -> None:
        """Hand each reply to the call it answers, in order, until the connection ends."""
        parser = hiredis.Reader(protocolError=InvalidResponse, replyError=_AsyncHiredisParser.parse_error)
        stream = link.conn._reader
        assert stream is not None
        try:
            while True:
                data = await stream.read(65536)
                if not data:
                    raise RedisConnectionError("Connection closed by server.")
                parser.feed(data)
                link.answered_at = time.monotonic()
                while (reply := parser.gets()) is not False:
                    if not link.waiting:
                        raise InvalidResponse("Redis sent a reply no command asked for")
                    call = link.waiting[0]
                    call.replies.append(reply)
                    if len(call.replies) == call.count:
                        link.waiting.popleft()
                        if not call.future.done():  # a caller that gave up has its replies dropped
                            call.future.set_result(call.replies)
        except asyncio.CancelledError:
            self._break(link, RedisConnectionError("Connection closed."))
            raise
        except Exception as exc:
            if not isinstance(exc, (RedisConnectionError, InvalidResponse)):
                exc = RedisConnectionError(f"Error reading from Redis: {exc}")
            self._break(link, exc)

    def _break(self, link: _Link, error: BaseException) -> None:
        """Drop the connection: every call waiting on it fails with `error`."""
        if link.broken is not None:
            return
        link.broken = error
        if self._link is link:
            self._link = None
        waiting, link.waiting = link.waiting, deque()
        link.outbox.clear()
        for call in waiting:
            if not call.future.done():
                call.future.set_exception(error)
        link.conn._close()  # type: ignore[attr-defined]  # no await: the socket just closes
        if link.reader is not None and link.reader is not asyncio.current_task():
            link.reader.cancel()

    async def close(self) -> None:
        link = self._link
        if link is None:
            return
        self._break(link, RedisConnectionError("Connection closed."))  # also forgets it
        if link.reader is not None:
            try:
                await link.reader
            except (asyncio.CancelledError, Exception):
                pass


def _packed(commands: Sequence[Command]) -> bytes:
    """The commands in the Redis protocol, by hiredis' packer in C: redis-py's asyncio
    connection packs in Python, several times slower for a script call's dozen arguments
    (two such calls on every hop)."""
    if len(commands) == 1:
        return hiredis.pack_command(tuple(commands[0]))
    return b"".join(hiredis.pack_command(tuple(command)) for command in commands)
