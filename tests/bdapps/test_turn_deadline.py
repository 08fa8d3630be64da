"""A turn has one deadline: the whole turn finishes inside its session lock with room to save.
Over real HTTP and a real Redis."""
from __future__ import annotations

import re

from server.engine.engine import MAX_SHORTCUT_SEGMENTS
from server.engine.session import decode_session

from ..conftest import FIXTURES, fixture_registry, start_stack
from ..helpers.hop_stack import ACK, Gate, mo, proxied_stack, wait_sent


async def test_chained_actions_that_outlast_the_lock_end_on_the_fallback_screen(aiohttp_server, redis_url):
    """Two chained actions of 2.5 s each fit their own 3 s timeouts but not the 5 s lock: the
    second gets what is left of the turn and falls back, and the state is saved."""
    async with proxied_stack(aiohttp_server, redis_url, Gate()) as (stack, _, direct):
        assert await stack.post_mo(mo("chain", "r1", "mo-init", "*401#")) == (200, ACK)
        await wait_sent(stack, 1)
        assert await stack.post_mo(mo("chain", "r2", "mo-cont", "2")) == (200, ACK)
        sent = await wait_sent(stack, 2)
        assert len(sent) == 2
        assert (sent[1]["ussdOperation"], sent[1]["message"]) == ("mt-fin", "Fallback")
        assert await direct.get_session("chain") is None  # the final screen's state: ended


async def test_a_dialled_shortcut_replays_at_most_eight_inputs(aiohttp_server, redis_store):
    stack = await start_stack(aiohttp_server, store=redis_store, flows_dir=FIXTURES / "flows",
                              registry=fixture_registry())
    try:
        dialled = "*300" + "*1" * (MAX_SHORTCUT_SEGMENTS + 4) + "#"  # every "1" adds one
        assert await stack.post_mo(mo("shortcut", "r1", "mo-init", dialled)) == (200, ACK)
        [screen] = await wait_sent(stack, 1)
        assert re.match(r"Count (\d+)", screen["message"]).group(1) == str(MAX_SHORTCUT_SEGMENTS)
        session = decode_session(await redis_store.get_session("shortcut"))
        assert session.vars["count"] == MAX_SHORTCUT_SEGMENTS
    finally:
        await stack.http.close()
