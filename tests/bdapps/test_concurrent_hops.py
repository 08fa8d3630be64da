"""Simultaneous hops: one session's hops are applied one after the other (never interleaved,
never lost); many sessions' screens each reach their own session."""
from __future__ import annotations

import asyncio
import re

from tests.conftest import APP_ID, FIXTURES, fixture_registry, start_stack


def mo(session_id, request_id, op, message, address="tel:8801812345678"):
    return {"applicationId": APP_ID, "sessionId": session_id, "requestId": request_id, "ussdOperation": op,
            "message": message, "sourceAddress": address, "encoding": "440", "version": "1.0"}


async def test_simultaneous_hops_of_one_session_are_serialised(aiohttp_server, store):
    stack = await start_stack(aiohttp_server, store=store, flows_dir=FIXTURES / "flows",
                              registry=fixture_registry())
    try:
        await stack.post_mo(mo("S", "init", "mo-init", "*300#"))
        await stack.settle()
        hops = 12
        answers = await asyncio.gather(*(stack.post_mo(mo("S", f"r{i}", "mo-cont", "1")) for i in range(hops)))
        assert all(status == 200 for status, _ in answers)
        for _ in range(300):
            if len(stack.sent()) >= hops + 1:
                break
            await asyncio.sleep(0.01)
        await stack.settle()
        counts = [int(re.match(r"Count (\d+)", s["message"]).group(1)) for s in stack.sent()[1:]]
        assert sorted(counts) == list(range(1, hops + 1))  # every hop applied exactly once
        await stack.post_mo(mo("S", "fin", "mo-cont", "2"))
        for _ in range(100):
            if stack.sent()[-1]["ussdOperation"] == "mt-fin":
                break
            await asyncio.sleep(0.01)
        assert stack.sent()[-1]["message"] == f"Final count {hops}"
    finally:
        await stack.http.close()


async def test_many_sessions_at_once_each_get_their_own_screens(aiohttp_server, store):
    stack = await start_stack(aiohttp_server, store=store)
    try:
        numbers = [f"0171{n:07d}" for n in range(40)]

        async def journey(i: int, number: str):
            address = f"tel:88{number}"
            screen = await stack.dial("*213#", address, sessionId=f"sess-{i}")
            screen = await stack.reply(screen, "1")
            screen = await stack.reply(screen, number)
            return screen

        screens = await asyncio.gather(*(journey(i, n) for i, n in enumerate(numbers)))
        for i, (number, screen) in enumerate(zip(numbers, screens)):
            assert screen["sessionId"] == f"sess-{i}"
            assert screen["destinationAddress"] == f"tel:88{number}"
            assert number.translate(str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")) in screen["message"]
    finally:
        await stack.http.close()
