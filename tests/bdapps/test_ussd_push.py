"""App-initiated USSD (`POST /push/ussd`, `alap push`): the pushed flow starts with `mt-init` and
the subscriber's replies continue it; a push the gateway refuses goes out by SMS."""
from __future__ import annotations

import asyncio

import pytest

from server.sandbox.bdapps import SCREENS, sent_sms
from server.store import Profile
from tests.bdapps.test_sms_keywords import ADDRESS, TOKEN, sms_stack  # noqa: F401  (sms_stack is the shared fixture)
from tests.conftest import Stack, start_stack


async def push(stack: Stack, body: dict, token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with stack.http.post(f"{stack.app_url}/push/ussd", json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None) if r.content_type == "application/json" else {}
async def test_push_starts_a_flow_that_mo_cont_continues(sms_stack):
    await sms_stack.store.set_profile(ADDRESS, Profile(lang="en"))
    status, answer = await push(sms_stack, {"address": ADDRESS, "flow": "parcel_notice",
                                            "vars": {"parcel_id": "ECR1022001175478", "agent_phone": "01712345678"}})
    assert status == 202
    session_id = answer["sessionId"]
    for _ in range(100):
        if sms_stack.sent():
            break
        await asyncio.sleep(0.01)
    [screen] = sms_stack.sent()
    assert screen["ussdOperation"] == "mt-init" and screen["sessionId"] == session_id
    assert screen["message"] == "Your parcel ECR1022001175478 is out for delivery.\n1. Track\n2. Call agent"
    sms_stack.gateway[SCREENS][session_id].get_nowait()  # the phone has shown the pushed screen
    assert await sms_stack.store.live_session(ADDRESS) == session_id  # the console's subscriber page finds it
    reply = await sms_stack.reply({"sessionId": session_id, "address": ADDRESS}, "2")
    assert reply["ussdOperation"] == "mt-fin" and reply["message"] == "Call your delivery agent at 01712345678."
async def test_push_refused_by_the_gateway_goes_out_by_sms(sms_stack):
    sms_stack.fail_sends(mode="body", json={"statusCode": "E1309", "statusDetail": "not allowed"})
    status, _ = await push(sms_stack, {"address": ADDRESS, "flow": "parcel_notice",
                                       "vars": {"parcel_id": "ECR1", "agent_phone": "017"}})
    assert status == 202
    for _ in range(200):
        if sent_sms(sms_stack.gateway):
            break
        await asyncio.sleep(0.01)
    assert sent_sms(sms_stack.gateway)[0]["message"].startswith("আপনার পার্সেল ECR1 ডেলিভারির পথে।")
    assert await sms_stack.store.live_session(ADDRESS) is None  # no open USSD session is left to show
@pytest.mark.parametrize("token, body, status", [
    ("wrong", {"address": ADDRESS, "flow": "parcel_notice"}, 401),
    (None, {"address": ADDRESS, "flow": "parcel_notice"}, 401),
    (TOKEN, {"address": ADDRESS, "flow": "no_such_flow"}, 400),
    (TOKEN, {"flow": "parcel_notice"}, 400),
])
async def test_push_refusals(sms_stack, token, body, status):
    assert (await push(sms_stack, body, token))[0] == status
    await asyncio.sleep(0.05)
    assert sms_stack.sent() == []
async def test_push_is_off_without_a_token(aiohttp_server, store):
    stack = await start_stack(aiohttp_server, store=store)
    try:
        assert (await push(stack, {"address": ADDRESS, "flow": "parcel_notice"}))[0] == 404
    finally:
        await stack.http.close()
