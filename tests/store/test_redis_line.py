"""The store's own Redis connections (server/store/redis_line.py) against a real redis-server:
a connection the server closed while it was idle is reconnected before use, and callers past
the line's size wait for a connection instead of failing."""
from __future__ import annotations

import asyncio

from ..conftest import redis_test_store


async def test_a_connection_closed_by_the_server_while_idle_is_reconnected(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        assert line is not None
        assert await line.call(("PING",)) in ([b"PONG"], [True])
        # The server drops every client but the one asking (as a restart would, for the line).
        await store.redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await asyncio.sleep(0.2)  # the FIN arrives
        key = store.key("line-test")
        assert await line.call(("SET", key, "1"), ("GET", key)) in ([True, b"1"], [b"OK", b"1"])


async def test_callers_past_the_size_wait_for_a_connection(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        line._free = asyncio.Semaphore(2)  # a line of two connections
        replies = await asyncio.gather(*(line.call(("ECHO", str(i))) for i in range(20)))
        assert [r[0] for r in replies] == [str(i).encode() for i in range(20)]
        assert len(line._idle) <= 2
