"""The expiry sweep on a real Redis (server/store/redis_hop_scripts.py SWEEP): more expired
sessions than one chunk are all popped and counted once, timed out or abandoned at the state
each waited in, and the work is done a chunk per script call with a few calls per chunk (a
script holds Redis for every hop: one ZREM and five funnel calls per session made a
10,000-session sweep hold it for ~70 ms)."""
from __future__ import annotations

import asyncio
import time

from server.store.funnel import FunnelHop, day_of
from server.store.redis_backend import SWEEP_CHUNK
from tests.conftest import redis_test_store

SESSIONS = 2 * SWEEP_CHUNK + 500


async def _calls(store, command: str) -> int:
    stats = await store.redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def _open_sessions(store, n: int) -> None:
    """n USSD sessions saved with a 1 s TTL: every third never answered (timed out), the others
    answered (abandoned), waiting in the menu or at the amount prompt."""
    day = day_of()

    async def one(i: int) -> None:
        lease = (await store.claim(f"sweep-{i}", "r1")).lease
        waiting = ("demo", "main" if i % 2 else "ask_total")
        funnel = FunnelHop(day, f"tel:88018120{i:05d}", [("demo", "started")], waiting_in=waiting)
        assert await store.commit(lease, b"s", 1, answered=i % 3 != 0, funnel=funnel)

    for start in range(0, n, 250):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 250))))


async def test_a_sweep_larger_than_a_chunk_counts_each_session_once_a_chunk_per_call(redis_url):
    async with redis_test_store(redis_url) as store:
        await _open_sessions(store, SESSIONS)
        deadline = time.monotonic() + 15
        while await store.count_active():
            assert time.monotonic() < deadline, await store.count_active()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.1)  # past the index's whole-second scores
        ranges_before, zrem_before = await _calls(store, "zremrangebyrank"), await _calls(store, "zrem")

        timed_out = sum(1 for i in range(SESSIONS) if i % 3 == 0)
        assert await store.sweep_expired() == (timed_out, SESSIONS - timed_out)
        assert await store.sweep_expired() == (0, 0)  # each counted once

        # One range removal per chunk, no removal per session.
        assert await _calls(store, "zremrangebyrank") - ranges_before >= SESSIONS // SWEEP_CHUNK + 1
        assert await _calls(store, "zrem") == zrem_before
        counts = await store.funnel("demo", [day_of()])
        assert counts.started == SESSIONS and counts.abandoned == SESSIONS
        assert counts.abandoned_at == {"main": SESSIONS // 2, "ask_total": SESSIONS - SESSIONS // 2}
        assert not await store.redis.hlen(store.waiting_key)
