"""The store's own Redis connection (server/store/redis_line.py) against a real redis-server:
calls made together go out in one write and each caller gets its own replies, a caller that
gave up never leaves its replies to the next, a connection the server closed is reopened, and
a Redis that answers nothing fails the waiting calls within the timeout."""
from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..conftest import redis_test_store

# A script that holds Redis (every client) for about `ARGV[1]` milliseconds, then answers 'slow'.
HOLD = """
local t = redis.call('TIME')
local until_us = t[1] * 1000000 + t[2] + ARGV[1] * 1000
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_us
return 'slow'
"""


async def _reads_processed(store) -> int:
    return int((await store.redis.info("stats"))["total_reads_processed"])


async def test_calls_made_together_go_out_in_one_write_and_each_gets_its_own_replies(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        assert line is not None
        await line.call(("PING",))  # open the connection first
        before = await _reads_processed(store)
        replies = await asyncio.gather(*(line.call(("ECHO", f"a{i}"), ("ECHO", f"b{i}")) for i in range(200)))
        after = await _reads_processed(store)
        assert replies == [[f"a{i}".encode(), f"b{i}".encode()] for i in range(200)]
        # 400 commands from 200 callers: Redis read them in a few reads (the INFO calls are 2 more),
        # not one per caller.
        assert after - before <= 6, after - before


async def test_an_error_reply_is_returned_to_its_own_caller_only(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        key = store.key("line-error")
        bad, good = await asyncio.gather(line.call(("SET", key, "x"), ("INCR", key)), line.call(("GET", key)))
        assert bad[0] in (b"OK", True) and isinstance(bad[1], Exception)
        assert good == [b"x"]


async def test_a_caller_that_gave_up_leaves_no_reply_for_the_next(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        slow = asyncio.create_task(line.call(("EVAL", HOLD, 0, 200)))
        queued = asyncio.create_task(line.call(("ECHO", "queued")))
        await asyncio.sleep(0.05)
        slow.cancel()  # its reply still arrives, first, and must go nowhere
        assert await queued == [b"queued"]
        assert await line.call(("ECHO", "next")) == [b"next"]
        with pytest.raises(asyncio.CancelledError):
            await slow


async def test_a_connection_closed_by_the_server_while_idle_is_reconnected(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        assert await line.call(("PING",)) in ([b"PONG"], [True])
        # The server drops every client but the one asking (as a restart would, for the line).
        await store.redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await asyncio.sleep(0.2)  # the FIN arrives
        key = store.key("line-test")
        assert await line.call(("SET", key, "1"), ("GET", key)) in ([True, b"1"], [b"OK", b"1"])


async def test_a_redis_that_answers_nothing_fails_every_waiting_call_within_the_timeout(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        line.timeout = 0.3
        assert await line.call(("PING",)) in ([b"PONG"], [True])
        await asyncio.sleep(0.4)  # the last answer is older than the timeout
        # Another client holds Redis for 1.5 s (as a hung server would, for the line).
        hold = asyncio.create_task(store.redis.eval(HOLD, 0, 1500))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        outcomes = await asyncio.gather(*(line.call(("ECHO", str(i))) for i in range(5)), return_exceptions=True)
        waited = time.monotonic() - started
        assert all(isinstance(o, RedisTimeoutError) for o in outcomes), outcomes
        assert waited < 1.0  # the timeout (0.3 s), not the 1.5 s hold
        assert await hold == b"slow"
        # The next call opens a new connection and is answered.
        assert await line.call(("ECHO", "after")) == [b"after"]


async def test_close_fails_nothing_that_was_answered_and_the_line_reopens(redis_url):
    async with redis_test_store(redis_url) as store:
        line = store.line
        assert await line.call(("ECHO", "one")) == [b"one"]
        await line.close()
        assert await line.call(("ECHO", "two")) == [b"two"]
