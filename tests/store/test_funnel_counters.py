"""Funnel counters (server/store/funnel.py) written by real hops through the real callback route,
on the memory store and on a real Redis: entries, transitions, completions, and abandonment
counted by the open-sessions sweep at the state where the subscriber stopped."""
from __future__ import annotations

import asyncio
import time

from server.store import MemoryStore
from server.store.funnel import day_of
from tests.conftest import redis_test_store, start_stack


async def _drive(aiohttp_server, store) -> None:
    stack = await start_stack(aiohttp_server, store=store, session_ttl=1)
    try:
        for address in ("tel:8801812000001", "tel:8801812000002"):  # two complete bill splits
            screen = await stack.dial(address=address)
            screen = await stack.reply(screen, "2")
            screen = await stack.reply(screen, "1250")
            screen = await stack.reply(screen, "4")
            assert screen["ussdOperation"] == "mt-fin"
        screen = await stack.dial(address="tel:8801812000003")  # stops at the amount prompt
        await stack.reply(screen, "2")
        await stack.dial(address="tel:8801812000004")  # never answers the menu
        await stack.settle()
        assert await store.live_session("tel:8801812000003")
        assert await store.live_session("tel:8801812000001") is None  # ended: no live session
        deadline = time.monotonic() + 10
        while await store.count_active() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.1)  # past the index's whole-second scores
        assert await store.sweep_expired() == (1, 1)
        assert await store.sweep_expired() == (0, 0)  # each counted once
    finally:
        await stack.http.close()


def _assert_demo_funnel(counts) -> None:
    assert counts.started == 4 and counts.completed == 2 and counts.abandoned == 2 and counts.failed == 0
    assert counts.entered["main"] == 4 and counts.entered["ask_total"] == 3
    assert counts.entered["ask_people"] == 2 and counts.entered["split_result"] == 2
    assert counts.transitions[("main", "ask_total")] == 3
    assert counts.transitions[("ask_total", "ask_people")] == 2
    assert counts.transitions[("ask_people", "split_route")] == 2
    assert counts.transitions[("split_route", "split_result")] == 2
    assert counts.abandoned_at == {"main": 1, "ask_total": 1}


async def test_memory_store_counts_the_funnel(aiohttp_server):
    store = MemoryStore()
    await _drive(aiohttp_server, store)
    _assert_demo_funnel(await store.funnel("demo", [day_of()]))
    assert (await store.funnel("demo", ["19990101"])).started == 0


async def test_redis_counts_the_funnel_in_day_hashes_kept_90_days(aiohttp_server, redis_url):
    async with redis_test_store(redis_url) as store:
        await _drive(aiohttp_server, store)
        _assert_demo_funnel(await store.funnel("demo", [day_of()]))
        key = store.funnel_key("demo", day_of())
        assert 90 * 86400 < await store.redis.ttl(key) <= 91 * 86400
        assert await store.redis.hlen(store.waiting_key) == 0  # swept sessions leave nothing behind
