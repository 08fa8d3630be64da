"""Resuming a dropped USSD call, over real HTTP (the sandbox phone) on both store backends
(the Redis one is a real redis-server): the offer on re-dial in bn and en, continuing to the
exact screen with its variables, back history and page, starting again, shortcuts, `resume:
false`, ended sessions, SMS, and the counters."""
from __future__ import annotations

from pathlib import Path

import pytest

from server.bdapps.payloads import subscriber_key
from server.engine.session import decode_session
from server.store import MemoryStore, Profile
from server.store.base import ResumeKey
from server.store.funnel import day_of
from server.store.redis_backend import RedisStore

from ..conftest import Stack, start_stack

OFFER_EN = "1. Continue where you left off\n2. Start again"
OFFER_BN = "1. যেখানে থেমেছিলেন সেখান থেকে চালিয়ে যান\n2. আবার শুরু করুন"
ADDRESS = "tel:8801812345678"


async def resumes(stack: Stack, flow: str, state: str, outcome: str) -> float:
    async with stack.http.get(f"{stack.app_url}/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("alap_resumes_total{") and f'flow="{flow}"' in line and f'state="{state}"' in line \
                and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def walk(stack: Stack, code: str, *replies: str, address: str = ADDRESS) -> dict:
    screen = await stack.dial(code, address)
    for reply in replies:
        screen = await stack.reply(screen, reply)
    return screen


async def test_a_redial_after_a_drop_is_offered_in_bengali_and_continues_exactly(stack: Stack):
    dropped = await walk(stack, "*213#", "2", "1250")  # the bill splitter, at "how many people?"
    assert dropped["ussdOperation"] == "mt-cont"
    before = await stack.store.get_session(dropped["sessionId"])
    offered = await resumes(stack, "demo", "ask_people", "offered")
    accepted = await resumes(stack, "demo", "ask_people", "accepted")

    offer = await stack.dial("*213#")  # the call dropped; the subscriber dials again
    assert offer["message"] == OFFER_BN
    assert offer["encoding"] == "16" and offer["ussdOperation"] == "mt-cont"
    assert len(offer["message"]) <= 80

    again = await stack.reply(offer, "১")  # Bengali digits work here too
    assert again["message"] == dropped["message"]  # exactly the screen that was on the phone
    restored = decode_session(await stack.store.get_session(again["sessionId"]))
    assert restored == decode_session(before)  # state, page, variables, history, pinned versions
    assert restored.vars == {"total": "1250"}
    final = await stack.reply(again, "4")  # the amount typed before the drop is still there
    assert final["ussdOperation"] == "mt-fin" and "৩১২.৫০" in final["message"]
    assert await resumes(stack, "demo", "ask_people", "offered") == offered + 1
    assert await resumes(stack, "demo", "ask_people", "accepted") == accepted + 1
    assert (await stack.store.funnel("demo", [day_of()])).resumed == 1  # the console's column

    # that session ended with a final screen: the next dial is a fresh start
    fresh = await stack.dial("*213#")
    assert fresh["message"].startswith("আলাপে স্বাগতম")


async def test_the_offer_is_in_english_for_an_english_subscriber_and_keeps_back_history(stack: Stack):
    await stack.store.set_profile(ADDRESS, Profile(lang="en"))
    dropped = await walk(stack, "*213#", "2", "1250")
    offer = await stack.dial("*213#")
    assert offer["message"] == OFFER_EN and offer["encoding"] == "440"
    wrong = await stack.reply(offer, "7")
    assert wrong["message"] == "Invalid choice.\n" + OFFER_EN
    again = await stack.reply(wrong, "1")
    assert again["message"] == dropped["message"]
    assert again["message"].startswith("How many people share it?")
    back = await stack.reply(again, "0")  # the back history came along
    assert back["message"].startswith("Enter the bill amount in taka:")


async def test_continue_restores_the_page_of_a_long_screen(stack: Stack):
    first = await stack.dial("*213#")
    page2 = await stack.reply(first, "98")  # the Bengali main menu is two pages long
    assert page2["message"] != first["message"]
    offer = await stack.dial("*213#")
    assert offer["message"] == OFFER_BN
    again = await stack.reply(offer, "1")
    assert again["message"] == page2["message"]
    assert (await stack.reply(again, "0"))["message"] == first["message"]  # page 1 again


async def test_start_again_forgets_the_dropped_session(stack: Stack):
    await walk(stack, "*213#", "2", "1250")
    declined = await resumes(stack, "demo", "ask_people", "declined")
    offer = await stack.dial("*213#")
    fresh = await stack.reply(offer, "2")
    assert fresh["message"].startswith("আলাপে স্বাগতম")
    assert decode_session(await stack.store.get_session(fresh["sessionId"])).vars == {}
    assert await resumes(stack, "demo", "ask_people", "declined") == declined + 1
    assert (await stack.store.funnel("demo", [day_of()])).resumed == 0  # started again: not resumed
    assert await stack.store.get_resume(ResumeKey(subscriber_key(ADDRESS), "demo")) is None  # forgotten
    assert (await stack.dial("*213#"))["message"].startswith("আলাপে স্বাগতম")  # no offer again


async def test_a_shortcut_is_a_new_request_without_an_offer(stack: Stack):
    await walk(stack, "*213#", "2", "1250")
    shortcut = await stack.dial("*213*2#")
    assert shortcut["message"].startswith("বিলের পরিমাণ")  # ask_total, fresh
    assert decode_session(await stack.store.get_session(shortcut["sessionId"])).vars == {}


async def test_an_ended_session_is_never_offered(stack: Stack):
    await walk(stack, "*213#", "2", "1250", "4")  # the final screen was sent
    assert (await stack.dial("*213#"))["message"].startswith("আলাপে স্বাগতম")


async def test_another_service_or_another_subscriber_gets_no_offer(stack: Stack):
    await walk(stack, "*213#", "2", "1250")
    assert (await stack.dial("*213#", "tel:8801700000009"))["message"].startswith("আলাপে স্বাগতম")
    assert (await stack.dial("*217#"))["message"].startswith("মোবাইল রিচার্জ")


async def test_the_recharge_confirmation_is_not_resumable_but_the_screens_before_it_are(stack: Stack):
    await stack.store.set_profile(ADDRESS, Profile(lang="en"))
    at_amount = await walk(stack, "*217#", "2", "01712345678", "1", "1")
    assert at_amount["message"].startswith("Amount in taka")
    offer = await stack.dial("*217#")
    assert offer["message"] == OFFER_EN
    confirm = await stack.reply(await stack.reply(offer, "1"), "50")
    assert confirm["message"].startswith("Recharge 01712345678")
    assert (await stack.dial("*217#"))["message"].startswith("Mobile recharge. Which number?")


async def test_the_record_lives_session_ttl_plus_the_window(stack: Stack):
    await walk(stack, "*213#", "2")
    key = ResumeKey(subscriber_key(ADDRESS), "demo")
    assert decode_session(await stack.store.get_resume(key)).state == "ask_total"
    if isinstance(stack.store, RedisStore):
        ttl = await stack.store.redis.ttl(stack.store.resume_key(key))
        assert 180 < ttl <= 180 + 120


async def test_sms_conversations_leave_no_resume_record(stack: Stack):
    async with stack.http.post(f"{stack.app_url}/bdapps/sms", json={
            "applicationId": "APP_TEST01", "sourceAddress": ADDRESS, "message": "TRACK", "requestId": "sms-1",
            "encoding": "0", "version": "1.0"}) as resp:
        assert resp.status == 200
    for flow in ("sms_track", "demo"):
        assert await stack.store.get_resume(ResumeKey(subscriber_key(ADDRESS), flow)) is None


FLOWS = {
    "quiz.yaml": """
flow: quiz
code: "*300#"
resume: false
start: q1
states:
  q1: {kind: input, text: "Your name?", var: name, next: q2}
  q2: {kind: input, text: "Your town?", var: town, next: done}
  done: {kind: end, text: "Thanks {{ name }}."}
""",
    "form.yaml": """
flow: form
code: "*301#"
default: true
start: f1
states:
  f1: {kind: input, text: "Your name?", var: name, next: f2}
  f2: {kind: input, text: "Your PIN?", var: pin, next: f3, resume: false}
  f3: {kind: input, text: "Your town?", var: town, next: done}
  done: {kind: end, text: "Thanks {{ name }}."}
""",
}


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_resume_false_on_a_flow_or_a_state_means_no_offer(aiohttp_server, redis_store, tmp_path: Path, backend):
    for name, text in FLOWS.items():
        (tmp_path / name).write_text(text)
    stack = await start_stack(aiohttp_server, store=MemoryStore() if backend == "memory" else redis_store,
                              flows_dir=tmp_path, default_language="en")
    try:
        await walk(stack, "*300#", "Rahim")
        assert (await stack.dial("*300#"))["message"] == "Your name?"  # the flow says resume: false
        await walk(stack, "*301#", "Rahim")  # on f2, which says resume: false
        assert (await stack.dial("*301#"))["message"] == "Your name?"
        await walk(stack, "*301#", "Rahim", "1234")  # on f3: resumable again
        offer = await stack.dial("*301#")
        assert offer["message"] == OFFER_EN
        assert (await stack.reply(offer, "1"))["message"] == "Your town?"
    finally:
        await stack.http.close()


async def test_a_window_of_zero_turns_resuming_off(aiohttp_server, redis_store):
    stack = await start_stack(aiohttp_server, store=redis_store, resume_window=0)
    try:
        await walk(stack, "*213#", "2", "1250")
        assert (await stack.dial("*213#"))["message"].startswith("আলাপে স্বাগতম")
        assert [k async for k in redis_store.redis.scan_iter(match=f"{redis_store.prefix}r:*")] == []
    finally:
        await stack.http.close()


async def test_a_gsm7_only_deployment_makes_the_offer_in_english(aiohttp_server):
    stack = await start_stack(aiohttp_server, store=MemoryStore(), ussd_unicode=False)
    try:
        await walk(stack, "*213#", "2", "1250")
        offer = await stack.dial("*213#")
        assert offer["message"] == OFFER_EN and offer["encoding"] == "440"
    finally:
        await stack.http.close()
