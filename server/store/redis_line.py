"""The store's script calls on a single Redis node: one round trip on connections of their own.

Every hop runs two or three scripts (claim, commit, sometimes lock or release). Through
redis-py's client each call also pays for the pool's lock and liveness probe, the retry
wrapper, the observability hooks and a task per socket write (`asyncio.wait_for`): about a
fifth of a worker's CPU under load. A script call needs none of them:

- a retry is not wanted: the dedupe record already makes BDApps' own redelivery safe, and a
  re-sent claim whose first copy ran would be taken for a duplicate (server/store/base.py);
- the timeout is one `asyncio.timeout` around the whole exchange (no task);
- a connection that failed or was cancelled mid-exchange is disconnected (a late reply must
  never be read as the next command's) and reconnects on its next use; an idle one the server
  closed (a Redis restart) is reconnected before it is used.

At most `size` connections exist, and a caller past that waits for one to come back instead of
failing (never a MaxConnectionsError). Hops are bounded per worker (server/bdapps/admission.py)
below `size`, so hops never wait here.
"""
from __future__ import annotations

import asyncio
from typing import Any, Sequence

import hiredis

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = Sequence[Any]


class RedisLine:
    def __init__(self, pool: ConnectionPool, size: int, timeout: float) -> None:
        options = dict(pool.connection_kwargs)
        options["socket_timeout"] = None  # the whole exchange is timed below
        self._make = lambda: pool.connection_class(**options)
        self._idle: list[AbstractConnection] = []
        self._free = asyncio.Semaphore(size)
        self.timeout = timeout
        self.size = size

    async def call(self, *commands: Command) -> list[Any]:
        """Send the commands in one write and read their replies in order. An error reply is
        returned as its exception (ResponseError, NoScriptError); a transport failure raises."""
        async with self._free:
            conn = self._idle.pop() if self._idle else self._make()
            if _closed_by_server(conn):  # e.g. Redis restarted while it was idle: reconnect first
                await conn.disconnect(nowait=True)
            try:
                async with asyncio.timeout(self.timeout):
                    await conn.send_packed_command(_packed(commands), check_health=False)
                    replies = []
                    for _ in commands:
                        try:
                            replies.append(await conn.read_response())
                        except ResponseError as exc:
                            replies.append(exc)
            except BaseException as exc:
                await conn.disconnect(nowait=True)
                self._idle.append(conn)
                if isinstance(exc, TimeoutError):
                    raise RedisTimeoutError("Timeout reading from Redis") from None
                raise
            self._idle.append(conn)
            return replies

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()


def _packed(commands: Sequence[Command]) -> bytes:
    """The commands in the Redis protocol, by hiredis' packer in C: redis-py's asyncio
    connection packs in Python, several times slower for a script call's dozen arguments
    (two such calls on every hop)."""
    if len(commands) == 1:
        return hiredis.pack_command(tuple(commands[0]))
    return b"".join(hiredis.pack_command(tuple(command)) for command in commands)


def _closed_by_server(conn: AbstractConnection) -> bool:
    """Whether the server has closed this idle connection (asyncio saw its EOF). redis-py's
    own pool probes with a read before every command; the stream's EOF flag costs nothing."""
    reader = getattr(conn, "_reader", None)
    return reader is not None and reader.at_eof()
