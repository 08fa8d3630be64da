"""The BDApps callback contract (design.md), over real HTTP: the app on one port, the sandbox
gateway capturing `/ussd/send` on another. Runs against both store backends."""
from __future__ import annotations

import asyncio
import json

import pytest
from structlog.testing import capture_logs

from server.integrations.bdapps import BdappsGateway
from server.store import Profile

from tests.conftest import APP_ID, PASSWORD, Stack

ACK = {"statusCode": "S1000", "statusDetail": "Success"}


def mo(**overrides):
    body = {"message": "*213#", "ussdOperation": "mo-init", "requestId": "071308060343170263",
            "sessionId": "1209992331266121", "encoding": "440", "applicationId": APP_ID,
            "sourceAddress": "tel:8801812345678", "version": "1.0"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


async def wait_sent(stack: Stack, count: int) -> list[dict]:
    for _ in range(300):
        if len(stack.sent()) >= count:
            break
        await asyncio.sleep(0.01)
    await stack.settle()
    return stack.sent()


# Captured-style payload variants: (overrides, expected screen start, expected encoding)
VARIANTS = [
    pytest.param({}, "আলাপে স্বাগতম", "16", id="seed-sample"),
    pytest.param({"encoding": "0"}, "আলাপে স্বাগতম", "16", id="encoding-0"),
    pytest.param({"encoding": "16"}, "আলাপে স্বাগতম", "16", id="encoding-16"),
    pytest.param({"encoding": ...}, "আলাপে স্বাগতম", "16", id="encoding-absent"),
    pytest.param({"encoding": 440, "version": 1.0}, "আলাপে স্বাগতম", "16", id="numeric-encoding-version"),
    pytest.param({"sourceAddress": "tel: 8801812345678"}, "আলাপে স্বাগতম", "16", id="tel-with-space"),
    pytest.param({"sourceAddress": "tel:B%3C4pbgsmCqqB8o8nDxrIv3n2yDBaR3+JyPY1L0YsWNhGoUWzr5i1cE6g=="},
                 "আলাপে স্বাগতম", "16", id="masked-address"),
    pytest.param({"message": "*213*2#"}, "বিলের পরিমাণ টাকায় লিখুন:", "16", id="shortcut"),
    pytest.param({"message": "*২১৩*২*১২৫০*৪#"}, "১,২৫০.০০৳, ৪ জনে ভাগ", "16", id="shortcut-bengali-digits"),
    pytest.param({"message": "010"}, "আলাপে স্বাগতম", "16", id="seed-message-010"),
]


@pytest.mark.parametrize("overrides, screen_start, encoding", VARIANTS)
async def test_mo_init_variants(stack: Stack, overrides, screen_start, encoding):
    body = mo(**overrides)
    status, answer = await stack.post_mo(body)
    assert (status, answer) == (200, ACK)
    [sent] = await wait_sent(stack, 1)
    assert sent["applicationId"] == APP_ID and sent["password"] == PASSWORD and sent["version"] == "1.0"
    assert sent["sessionId"] == body["sessionId"]
    assert sent["destinationAddress"] == body["sourceAddress"]  # byte for byte, masked ids too
    assert sent["message"].startswith(screen_start)
    assert sent["encoding"] == encoding


async def test_english_screens_go_out_as_440_and_mt_fin_on_the_last(stack: Stack):
    await stack.store.set_profile("tel:8801812345678", Profile(lang="en"))
    await stack.post_mo(mo(sourceAddress="tel: 8801812345678"))  # same subscriber, other spelling
    await stack.post_mo(mo(ussdOperation="mo-cont", message="2", requestId="r2"))
    await wait_sent(stack, 2)
    await stack.post_mo(mo(ussdOperation="mo-cont", message="1250", requestId="r3"))
    await wait_sent(stack, 3)
    await stack.post_mo(mo(ussdOperation="mo-cont", message="৪", requestId="r4"))
    sent = await wait_sent(stack, 4)
    assert [s["ussdOperation"] for s in sent] == ["mt-cont", "mt-cont", "mt-cont", "mt-fin"]
    assert all(s["encoding"] == "440" for s in sent)
    assert sent[-1]["message"] == "Tk 1,250.00 shared by 4: Tk 312.50 each."
    assert await stack.store.get_session(mo()["sessionId"]) is None  # ended sessions are gone


async def test_walk_through_the_sandbox_phone_in_both_languages(stack: Stack):
    screen = await stack.dial("*213#")
    assert screen["message"].startswith("আলাপে স্বাগতম")
    screen = await stack.reply(screen, "7")  # language menu
    screen = await stack.reply(screen, "1")  # English
    assert screen["message"].startswith("Welcome to Alap") and screen["encoding"] == "440"
    screen = await stack.dial("*213#")  # the choice persists across sessions
    assert screen["message"].startswith("Welcome to Alap")
    screen = await stack.reply(screen, "1")
    screen = await stack.reply(screen, "01612345678")
    assert screen["message"].startswith("01612345678 is Airtel by its prefix.")


async def test_repeated_request_id_is_acked_and_not_processed_again(stack: Stack):
    assert (await stack.post_mo(mo())) == (200, ACK)
    await wait_sent(stack, 1)
    assert (await stack.post_mo(mo())) == (200, ACK)
    await asyncio.sleep(0.1)
    await stack.settle()
    assert len(stack.sent()) == 1
    assert stack.service.stats["duplicate"] == 1


@pytest.mark.parametrize("lang, text", [
    (None, "আপনার সেশন শেষ হয়েছে। আবার ডায়াল করুন।"),
    ("en", "Your session has ended. Please dial again."),
])
async def test_mo_cont_for_unknown_session_ends_politely(stack: Stack, lang, text):
    if lang:
        await stack.store.set_profile("tel:8801812345678", Profile(lang=lang))
    status, answer = await stack.post_mo(mo(ussdOperation="mo-cont", message="1", sessionId="gone"))
    assert (status, answer) == (200, ACK)
    [sent] = await wait_sent(stack, 1)
    assert sent["ussdOperation"] == "mt-fin" and sent["message"] == text and sent["sessionId"] == "gone"


BAD = [
    pytest.param(b"not json", 400, "E1312", "Body is not valid JSON", id="not-json"),
    pytest.param(b"[1, 2]", 400, "E1312", "Expected `object`, got `array`", id="array"),
    pytest.param(b'"text"', 400, "E1312", "Expected `object`, got `str`", id="string"),
    pytest.param(json.dumps(mo(sessionId=...)).encode(), 400, "E1312", "missing required field `sessionId`",
                 id="missing-sessionId"),
    pytest.param(json.dumps(mo(sourceAddress=...)).encode(), 400, "E1312", "missing required field `sourceAddress`",
                 id="missing-sourceAddress"),
    pytest.param(json.dumps(mo(message=...)).encode(), 400, "E1312", "missing required field `message`",
                 id="missing-message"),
    pytest.param(json.dumps(mo(requestId=...)).encode(), 400, "E1312", "missing required field `requestId`",
                 id="missing-requestId"),
    pytest.param(json.dumps(mo(sessionId=12345)).encode(), 400, "E1312", "Expected `str`, got `int` - at `$.sessionId`",
                 id="int-sessionId"),
    pytest.param(json.dumps(mo(sessionId="")).encode(), 400, "E1312", "Expected `str` of length >= 1",
                 id="empty-sessionId"),
    pytest.param(json.dumps(mo(message=None)).encode(), 400, "E1312", "Expected `str`, got `null`", id="null-message"),
    pytest.param(json.dumps(mo(ussdOperation="mt-fin")).encode(), 400, "E1312", "ussdOperation must be mo-init or mo-cont",
                 id="wrong-operation"),
    pytest.param(json.dumps(mo(applicationId="APP_999999")).encode(), 403, "E1313",
                 "Authentication failed. No such active application with applicationId APP_999999", id="foreign-app"),
]


@pytest.mark.parametrize("raw, status, code, detail", BAD)
async def test_bad_input_is_refused_and_changes_nothing(stack: Stack, raw, status, code, detail):
    got_status, answer = await stack.post_mo(None, raw=raw)
    assert got_status == status
    assert answer["statusCode"] == code and detail in answer["statusDetail"]
    if code == "E1312":
        assert answer["statusDetail"].startswith("Request is Invalid. ")
    await asyncio.sleep(0.05)
    assert stack.sent() == []
    assert await stack.store.get_session("1209992331266121") is None
    # The refused request id was not remembered: a valid delivery of it is processed.
    assert (await stack.post_mo(mo())) == (200, ACK)
    assert len(await wait_sent(stack, 1)) == 1


async def test_send_retried_on_retryable_code(stack: Stack):
    stack.fail_sends(mode="body", json={"statusCode": "E1318", "statusDetail": "TPS exceeded"}, times=1)
    with capture_logs() as logs:
        await stack.post_mo(mo())
        sent = await wait_sent(stack, 2)
    assert len(sent) == 2 and stack.service.stats["sent"] == 1
    failure = next(e for e in logs if e["event"] == "bdapps_send_failed")
    assert failure["status_code"] == "E1318" and failure["retryable"] is True


async def test_send_not_retried_on_permanent_code(stack: Stack):
    stack.fail_sends(mode="body", json={"statusCode": "E1313", "statusDetail": "Authentication failed."})
    with capture_logs() as logs:
        await stack.post_mo(mo())
        await wait_sent(stack, 1)
        await asyncio.sleep(0.3)
    assert len(stack.sent()) == 1 and stack.service.stats["send_failed"] == 1
    failure = next(e for e in logs if e["event"] == "bdapps_send_failed")
    assert failure["status_code"] == "E1313" and failure["retryable"] is False


async def test_send_timeout_is_logged_and_not_retried(stack: Stack):
    gateway = BdappsGateway(stack.gateway_url, APP_ID, PASSWORD, stack.http, timeout=0.2)
    stack.fail_sends(mode="delay", seconds=0.5)
    with capture_logs() as logs:
        result = await gateway.send_ussd("s", "tel:8801812345678", "hi", "mt-cont", "440")
    assert not result.ok and result.status_code == "timeout" and result.attempts == 1
    assert [e["status_code"] for e in logs if e["event"] == "bdapps_send_failed"] == ["timeout"]


async def test_send_connection_refused_is_retried(stack: Stack):
    from tests.conftest import free_port

    gateway = BdappsGateway(f"http://127.0.0.1:{free_port()}", APP_ID, PASSWORD, stack.http, backoff=0.01)
    result = await gateway.send_ussd("s", "tel:8801812345678", "hi", "mt-cont", "440")
    assert not result.ok and result.status_code == "connect" and result.attempts == 6


async def test_healthz(stack: Stack):
    async with stack.http.get(f"{stack.app_url}/healthz") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "ok"


async def test_default_language_applies_to_new_subscribers(aiohttp_server, store):
    from tests.conftest import start_stack

    stack = await start_stack(aiohttp_server, store=store, default_language="en")
    try:
        screen = await stack.dial("*213#", "tel:8801700000001")
        assert screen["message"].startswith("Welcome to Alap") and screen["encoding"] == "440"
    finally:
        await stack.http.close()


async def test_gsm7_only_deployment_sends_english_ascii_screens(aiohttp_server, store):
    from tests.conftest import start_stack

    stack = await start_stack(aiohttp_server, store=store, ussd_unicode=False)
    try:
        screen = await stack.dial("*213#", "tel:8801700000002")  # a Bengali subscriber (default bn)
        assert screen["message"].startswith("Welcome to Alap") and screen["encoding"] == "440"
        screen = await stack.reply(screen, "২")  # Bengali digits still read
        assert screen["message"] == "Enter the bill amount in taka:" and screen["message"].isascii()
    finally:
        await stack.http.close()
