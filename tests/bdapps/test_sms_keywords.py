"""The SMS channel over real HTTP: keyword commands, multi-turn SMS, opt-out and delivery
reports (app-initiated USSD, which shares `sms_stack`, is tests/bdapps/test_ussd_push.py)."""
from __future__ import annotations

import asyncio

import pytest

from server.actions import build_registry
from server.app import SMS_SENDER
from server.integrations.caas import CaasClient
from server.integrations.ecare import ECareClient
from server.integrations.ecourier import ECourierClient
from server.sandbox.bdapps import sent_sms
from server.sandbox.ecourier import create_ecourier_fake
from server.store import Profile
from server.upstreams import Upstreams

from tests.conftest import APP_ID, PASSWORD, Stack, start_stack

ADDRESS = "tel:8801812345678"
TOKEN = "admin-token-for-tests"


@pytest.fixture
async def sms_stack(aiohttp_server, store) -> Stack:
    ecourier = await aiohttp_server(create_ecourier_fake("k", "s", "u"))
    upstreams = Upstreams(ECourierClient(str(ecourier.make_url("")).rstrip("/"), "k", "s", "u"),
                          ECareClient("http://127.0.0.1:9/ecare", "a", "b"),
                          CaasClient("http://127.0.0.1:9", APP_ID, PASSWORD))
    stack = await start_stack(aiohttp_server, store=store, registry=build_registry(upstreams),
                              admin_token=TOKEN, sms_routes="bdapps")
    yield stack
    await stack.http.close()
    await upstreams.aclose()


async def text(stack: Stack, message: str, address: str = ADDRESS) -> str:
    async with stack.http.post(f"{stack.gateway_url}/phone/sms", json={"address": address, "message": message}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["message"]


@pytest.mark.parametrize("message, reply", [
    ("HELP", "Alap commands: TRACK <parcel ID>, LANG BN or LANG EN, STOP, START, HELP."),
    ("help", "Alap commands: TRACK <parcel ID>, LANG BN or LANG EN, STOP, START, HELP."),
    ("HELLO there", "Unknown command HELLO.\nAlap commands: TRACK <parcel ID>, LANG BN or LANG EN, STOP, START, HELP."),
    ("TRACK ECR1022001175478", "Parcel ECR1022001175478: Delivered, 20/01/2017 12:04."),
    ("track ecr1022001175478", "Parcel ECR1022001175478: Delivered, 20/01/2017 12:04."),
    ("TRACK NOPE-404", "No parcel found for NOPE-404."),
])
async def test_keywords_in_english(sms_stack, message, reply):
    await sms_stack.store.set_profile(ADDRESS, Profile(lang="en"))
    assert await text(sms_stack, message) == reply


async def test_bengali_alias_and_default_language(sms_stack):
    assert (await text(sms_stack, "সাহায্য")).startswith("আলাপ কমান্ড: TRACK")
    assert await text(sms_stack, "ট্র্যাক ECR1022001175478") == "পার্সেল ECR1022001175478: ডেলিভারি হয়েছে, ২০/০১/২০১৭ ১২:০৪।"


async def test_track_without_id_is_a_two_message_conversation(sms_stack):
    await sms_stack.store.set_profile(ADDRESS, Profile(lang="en"))
    assert await text(sms_stack, "TRACK") == "Reply with your eCourier ID (like ECR1022001175478) or order ID."
    assert await text(sms_stack, "ECR1022001175478") == "Parcel ECR1022001175478: Delivered, 20/01/2017 12:04."
    assert (await text(sms_stack, "ECR1022001175478")).startswith("Unknown command ECR1022001175478.")


async def test_lang_is_shared_with_ussd(sms_stack):
    assert await text(sms_stack, "LANG EN") == "Your language is now English."
    screen = await sms_stack.dial("*213#", ADDRESS)
    assert screen["message"].startswith("Welcome to Alap")
    assert await text(sms_stack, "LANG") == "Reply with the number of your language:\n1. Bangla\n2. English"
    assert await text(sms_stack, "1") == "আপনার ভাষা এখন বাংলা।"


async def test_stop_blocks_notices_but_not_replies_and_start_resumes(sms_stack):
    await sms_stack.store.set_profile(ADDRESS, Profile(lang="en"))
    assert (await text(sms_stack, "STOP")).startswith("You will get no more messages from Alap.")
    sender = sms_stack.app[SMS_SENDER]
    before = len(sent_sms(sms_stack.gateway))
    notice = await sender.send(ADDRESS, "Your parcel is on its way", kind="notice")
    assert notice.status.value == "OPTED_OUT" and len(sent_sms(sms_stack.gateway)) == before
    assert (await text(sms_stack, "HELP")).startswith("Alap commands")  # a reply to their request
    assert (await text(sms_stack, "START")).startswith("Welcome back!")
    sent = await sender.send(ADDRESS, "Your parcel is on its way", kind="notice")
    assert sent.status.value == "ACCEPTED" and sent_sms(sms_stack.gateway)[-1]["message"] == "Your parcel is on its way"


async def test_duplicate_request_id_is_answered_once(sms_stack):
    body = {"applicationId": APP_ID, "sourceAddress": ADDRESS, "message": "HELP", "requestId": "dup-1",
            "encoding": "0", "version": "1.0"}
    for _ in range(2):
        async with sms_stack.http.post(f"{sms_stack.app_url}/bdapps/sms", json=body) as r:
            assert r.status == 200 and (await r.json())["statusCode"] == "S1000"
    await asyncio.sleep(0.3)
    assert len(sent_sms(sms_stack.gateway)) == 1


@pytest.mark.parametrize("body, status, code", [
    ({"applicationId": APP_ID, "message": "HELP", "requestId": "r"}, 400, "E1312"),
    ({"applicationId": APP_ID, "sourceAddress": ADDRESS, "message": 5, "requestId": "r"}, 400, "E1312"),
    ({"applicationId": "APP_OTHER", "sourceAddress": ADDRESS, "message": "HELP", "requestId": "r"}, 403, "E1313"),
])
async def test_bad_sms_is_refused(sms_stack, body, status, code):
    async with sms_stack.http.post(f"{sms_stack.app_url}/bdapps/sms", json=body) as r:
        assert r.status == status and (await r.json())["statusCode"] == code
    await asyncio.sleep(0.1)
    assert sent_sms(sms_stack.gateway) == []


async def test_delivery_reports_update_the_message_and_unknown_ids_are_acked(sms_stack):
    sent = await sms_stack.app[SMS_SENDER].send(ADDRESS, "Receipt: Tk 50", kind="receipt")
    message_id = sent.message_ids[0]
    for status, expected in (("DELIVRD", 200), ("DELIVERED", 200)):
        report = {"destinationAddress": ADDRESS, "timeStamp": "2611220101", "requestId": message_id,
                  "deliveryStatus": status}
        async with sms_stack.http.post(f"{sms_stack.app_url}/bdapps/sms/report", json=report) as r:
            assert r.status == expected
    record = await sms_stack.app[SMS_SENDER].log.find("bdapps", message_id)
    assert record.status.value == "DELIVERED"
    unknown = {"destinationAddress": ADDRESS, "timeStamp": "2611220101", "requestId": "nope", "deliveryStatus": "UNDELIV"}
    async with sms_stack.http.post(f"{sms_stack.app_url}/bdapps/sms/report", json=unknown) as r:
        assert r.status == 200 and (await r.json())["statusCode"] == "S1000"


