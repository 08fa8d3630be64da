"""The in-memory store (`alap dev`) forgets expired sessions, owners, locks and dedupe records,
so a long run stays flat. Hops go over real HTTP; the store runs on a clock the test moves."""
from __future__ import annotations

from server.store import MemoryStore
from server.store.base import DEDUPE_TTL
from server.store.memory_backend import SWEEP_EVERY

from ..conftest import start_stack
from ..helpers.hop_stack import ACK, mo, wait_sent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sizes(store: MemoryStore) -> dict[str, int]:
    return {name: len(getattr(store, name)) for name in ("sessions", "owners", "locks", "seen")}


async def test_expired_sessions_and_dedupe_records_are_swept(aiohttp_server):
    clock = Clock()
    store = MemoryStore(clock=clock)
    stack = await start_stack(aiohttp_server, store=store, session_ttl=180)
    try:
        for n in range(20):  # twenty subscribers dial and walk away
            assert await stack.post_mo(mo(f"gone-{n}", f"r{n}", "mo-init", "*213#", f"tel:88017110000{n:02d}")) \
                == (200, ACK)
        await wait_sent(stack, 20)
        assert sizes(store) == {"sessions": 20, "owners": 20, "locks": 0, "seen": 20}

        clock.now += max(180, DEDUPE_TTL) + SWEEP_EVERY + 1  # everything expired, a sweep is due
        assert await stack.post_mo(mo("fresh", "r-fresh", "mo-init", "*213#")) == (200, ACK)
        await wait_sent(stack, 21)
        assert sizes(store) == {"sessions": 1, "owners": 1, "locks": 0, "seen": 1}
        assert await store.get_session("fresh") is not None
    finally:
        await stack.http.close()
