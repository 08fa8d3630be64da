"""Exactly one screen per accepted hop, and no screen without its saved state, over real HTTP
against a real redis-server reached through a proxy that can hold its replies back.

The Redis client gives up after its 1 s socket timeout (server/store/redis_backend.py): a
reply held back 2.5 s means the command ran inside Redis but the server never learnt it."""
from __future__ import annotations

import asyncio
import json

from server.engine.session import decode_session

from ..helpers.hop_stack import ACK, Gate, mo, proxied_stack, wait_sent

LATE = 2.5  # seconds a held-back Redis reply arrives after the client gave up (1 s)


async def test_a_hop_refused_because_its_claim_answer_came_late_is_processed_when_redelivered(
        aiohttp_server, redis_url):
    async with proxied_stack(aiohttp_server, redis_url) as (stack, proxy, direct):
        assert await stack.post_mo(mo("late-claim", "r1", "mo-init", "*213#")) == (200, ACK)
        await wait_sent(stack, 1)

        hop = mo("late-claim", "r2", "mo-cont", "2")  # "Split a bill"
        proxy.reply_delay = LATE
        status, answer = await stack.post_mo(hop)
        assert status == 503 and answer["statusCode"] == "E1603"  # refused: not seen
        proxy.reply_delay = 0.0

        assert await stack.post_mo(hop) == (200, ACK)  # the gateway delivers it again
        sent = await wait_sent(stack, 2)
        assert [s["ussdOperation"] for s in sent] == ["mt-cont", "mt-cont"]
        assert sent[1]["message"] == "বিলের পরিমাণ টাকায় লিখুন:"
        session = decode_session(await direct.get_session("late-claim"))
        assert session is not None and session.state == "ask_total"

        assert await stack.post_mo(hop) == (200, ACK)  # a third delivery of a done hop...
        assert len(await wait_sent(stack, 3, timeout=1.0)) == 2  # ...is a duplicate: no screen


async def test_a_hop_waiting_for_the_lock_whose_claim_answer_came_late_gets_one_screen(aiohttp_server, redis_url):
    gate = Gate()
    async with proxied_stack(aiohttp_server, redis_url, gate) as (stack, proxy, direct):
        assert await stack.post_mo(mo("late-busy", "r1", "mo-init", "*401#")) == (200, ACK)
        await wait_sent(stack, 1)
        assert await stack.post_mo(mo("late-busy", "r2", "mo-cont", "1")) == (200, ACK)  # holds the lock
        await asyncio.wait_for(gate.entered.wait(), 15)

        waiting = mo("late-busy", "r3", "mo-cont", "1")  # "Home" once r2 is done
        proxy.reply_delay = LATE
        status, _ = await stack.post_mo(waiting)
        assert status == 503
        proxy.reply_delay = 0.0
        assert await stack.post_mo(waiting) == (200, ACK)  # redelivered while r2 still holds the lock
        gate.opened.set()

        sent = await wait_sent(stack, 3)
        assert [s["message"] for s in sent[1:]] == ["After the gate\n1. Home", "Hop\n1. Gate\n2. Chain"]
        assert decode_session(await direct.get_session("late-busy")).state == "main"


async def test_a_save_that_fails_ends_the_session_with_service_busy(aiohttp_server, redis_url):
    gate = Gate()
    async with proxied_stack(aiohttp_server, redis_url, gate) as (stack, proxy, direct):
        assert await stack.post_mo(mo("late-save", "r1", "mo-init", "*401#")) == (200, ACK)
        await wait_sent(stack, 1)
        assert await stack.post_mo(mo("late-save", "r2", "mo-cont", "1")) == (200, ACK)
        await asyncio.wait_for(gate.entered.wait(), 15)
        proxy.reply_delay = LATE  # the commit's answer will not arrive in time
        gate.opened.set()

        sent = await wait_sent(stack, 2)
        proxy.reply_delay = 0.0
        assert len(sent) == 2
        assert sent[1]["ussdOperation"] == "mt-fin"
        assert sent[1]["message"] == "সেবাটি এখন ব্যস্ত। পরে আবার চেষ্টা করুন।"


async def test_a_turn_whose_lock_was_lost_ends_with_service_busy_not_a_screen_without_state(
        aiohttp_server, redis_url):
    gate = Gate()
    async with proxied_stack(aiohttp_server, redis_url, gate) as (stack, proxy, direct):
        assert await stack.post_mo(mo("lost-lock", "r1", "mo-init", "*401#")) == (200, ACK)
        await wait_sent(stack, 1)
        before = await direct.get_session("lost-lock")
        assert await stack.post_mo(mo("lost-lock", "r2", "mo-cont", "1")) == (200, ACK)
        await asyncio.wait_for(gate.entered.wait(), 15)
        # The lock ran out while the turn was busy and another hop took it.
        await direct.redis.set(direct._lock_key("lost-lock"), "another-hop", px=5000)
        gate.opened.set()

        sent = await wait_sent(stack, 2)
        assert len(sent) == 2
        assert sent[1]["ussdOperation"] == "mt-fin"  # never an mt-cont whose state is not saved
        assert sent[1]["message"] == "সেবাটি এখন ব্যস্ত। পরে আবার চেষ্টা করুন।"
        assert await direct.get_session("lost-lock") == before  # nothing was written
        assert json.loads(before)["state"] == "main"
