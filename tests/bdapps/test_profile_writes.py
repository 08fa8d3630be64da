"""Profiles are changed field by field: an SMS STOP and a USSD language change of the same
subscriber at the same moment both survive. Real HTTP (both callback routes), both stores."""
from __future__ import annotations

import asyncio

from server.bdapps.routes import SMS_SERVICE

from ..conftest import APP_ID, start_stack
from ..helpers.hop_stack import ACK, mo

SUBSCRIBERS = 40


def stop_sms(address: str, request_id: str) -> dict:
    return {"applicationId": APP_ID, "sourceAddress": address, "message": "STOP", "requestId": request_id,
            "encoding": "0", "version": "1.0"}


async def test_sms_stop_and_ussd_language_change_at_once_both_survive(aiohttp_server, store):
    # No SMS rate limit (ALAP_SMS_RATE, 10 a second by default): the 40 STOP confirmations
    # would take 4 s to leave, and this test is about the profiles, not the throttle.
    stack = await start_stack(aiohttp_server, store=store, sms_rate=0.0)
    try:
        await _both_survive(stack)
    finally:
        await stack.http.close()


async def _both_survive(stack) -> None:
    async def post_sms(body: dict) -> tuple[int, dict]:
        async with stack.http.post(f"{stack.app_url}/bdapps/sms", json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    addresses = [f"tel:8801711{n:06d}" for n in range(SUBSCRIBERS)]
    calls = []
    for n, address in enumerate(addresses):
        calls.append(post_sms(stop_sms(address, f"sms-{n}")))
        # *213# -> 7 Language -> 1 English (the only other language from Bangla): set_language
        calls.append(stack.post_mo(mo(f"lang-{n}", f"ussd-{n}", "mo-init", "*213*7*1#", address)))
    assert all(answer == (200, ACK) for answer in await asyncio.gather(*calls))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline and (stack.service.tasks or stack.app[SMS_SERVICE].tasks):
        await asyncio.sleep(0.02)
    profiles = [await stack.store.get_profile(address) for address in addresses]
    assert [(p.lang, p.opted_out) for p in profiles] == [("en", True)] * SUBSCRIBERS
