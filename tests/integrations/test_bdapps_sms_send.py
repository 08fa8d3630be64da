"""The BDApps `/sms/send` client on the wire against the sandbox gateway: fields, encoding, masked
ids byte for byte, error answers, ambiguous disconnects, and the seed's answer shapes.

Shares the SMS harness of tests/messaging/test_routing_failover_and_reports.py."""
from __future__ import annotations

import asyncio

import pytest

from server.integrations.bdapps import parse_sms_answer
from server.sandbox.bdapps import sms_error
from tests.conftest import APP_ID, PASSWORD, free_port
from tests.messaging.test_routing_failover_and_reports import (  # noqa: F401  (mem_env is the shared fixture)
    MASKED, ROBI, Env, mem_env,
)


@pytest.mark.parametrize("text, encoding", [
    ("Your parcel is on its way", "0"),
    ("Price: £5 @ shop", "0"),  # GSM-7, not ASCII
    ("আপনার পার্সেল পৌঁছেছে", "16"),
    ("Code 1234 আলাপ", "16"),
])
async def test_send_sms_wire_fields_and_encoding(mem_env: Env, text: str, encoding: str) -> None:
    result = await mem_env.gateway().send_sms([ROBI], text, source_address="21213")

    body = mem_env.calls(mem_env.bdapps, "/sms/send")[0]["json"]
    assert body == {"applicationId": APP_ID, "password": PASSWORD, "version": "1.0",
                    "destinationAddresses": [ROBI], "message": text, "encoding": encoding,
                    "deliveryStatusRequest": "1", "sourceAddress": "21213"}
    assert result.ok and result.outcome == "accepted" and result.encoding == encoding
    sms = mem_env.bdapps_sms[0]
    assert (sms["to"], sms["message"], sms["encoding"]) == (ROBI, text, encoding)
    assert result.message_ids == (sms["messageId"],) and result.request_id == sms["messageId"]
    # the fake answers "tel: 880..." like the seed; parsing keeps it, matching ignores spaces
    assert result.destinations[0].address == "tel: 8801812345678"
    assert result.destinations[0].address_key == ROBI


async def test_send_sms_masked_id_byte_for_byte_no_source_no_report(mem_env: Env) -> None:
    await mem_env.gateway().send_sms([MASKED], "hello", source_address=None, delivery_report=False)

    body = mem_env.calls(mem_env.bdapps, "/sms/send")[0]["json"]
    assert body["destinationAddresses"] == [MASKED]
    assert "sourceAddress" not in body and body["deliveryStatusRequest"] == "0"
    assert mem_env.bdapps_sms[0]["to"] == MASKED


@pytest.mark.parametrize("fault, code, outcome", [
    ({"mode": "body", "json": sms_error("E1318")}, "E1318", "rate_limited"),
    ({"mode": "body", "json": sms_error("E1319")}, "E1319", "daily_limit"),
    ({"mode": "body", "json": sms_error("E1602")}, "E1602", "retryable"),
    ({"mode": "body", "json": sms_error("E1603")}, "E1603", "retryable"),
    ({"mode": "body", "json": sms_error("E1326")}, "E1326", "retryable"),
    ({"mode": "body", "json": sms_error("E1313", "Authentication failed.")}, "E1313", "failed"),
    ({"mode": "body", "json": sms_error("E1341")}, "E1341", "failed"),
    ({"mode": "body", "json": {"statusCode": "S1000", "requestId": "77", "destinationResponses": [
        {"address": "tel : 8801812345678", "statusCode": "E1317", "statusDetail": "not allowed"}]}},
     "E1317", "failed"),
    ({"mode": "body", "json": {"statusCode": "S1000", "requestId": "77", "destinationResponses": [
        {"address": "tel : 8801812345678", "statusCode": "E1603"}]}}, "E1603", "retryable"),
    ({"mode": "status", "status": 503}, "http_503", "retryable"),
    ({"mode": "status", "status": 400}, "http_400", "failed"),
    ({"mode": "malformed"}, "malformed", "ambiguous"),
    ({"mode": "body", "json": {"unexpected": True}}, "malformed", "ambiguous"),
    ({"mode": "delay", "seconds": 1.0}, "timeout", "ambiguous"),
])
async def test_send_sms_error_answers(mem_env: Env, fault: dict, code: str, outcome: str) -> None:
    mem_env.fault(mem_env.bdapps, "/sms/send", times=1, **fault)

    result = await mem_env.gateway(timeout=0.3).send_sms([ROBI], "hi")

    assert (result.status_code, result.outcome, result.ok) == (code, outcome, False)
    assert result.retryable == (outcome in ("rate_limited", "daily_limit", "retryable"))
    assert result.message_ids == ()


async def _read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")  # the request reached the "gateway"...
    writer.close()  # ...which hangs up without an answer


async def test_send_sms_disconnect_after_the_request_is_ambiguous(mem_env: Env) -> None:
    server = await asyncio.start_server(_read_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await mem_env.gateway(f"http://127.0.0.1:{port}").send_sms([ROBI], "hi", attempts=3)
    finally:
        server.close()
        await server.wait_closed()
    assert (result.status_code, result.outcome, result.attempts) == ("disconnected", "ambiguous", 1)


async def test_send_sms_connection_refused(mem_env: Env) -> None:
    result = await mem_env.gateway(f"http://127.0.0.1:{free_port()}").send_sms([ROBI], "hi")
    assert (result.status_code, result.outcome) == ("connect", "retryable")


async def test_send_sms_retries_only_sure_failures_when_asked(mem_env: Env) -> None:
    gw = mem_env.gateway(timeout=0.3)
    mem_env.fault(mem_env.bdapps, "/sms/send", mode="body", json=sms_error("E1603"), times=1)
    assert (await gw.send_sms([ROBI], "hi", attempts=3)).ok
    assert len(mem_env.calls(mem_env.bdapps, "/sms/send")) == 2

    mem_env.fault(mem_env.bdapps, "/sms/send", mode="delay", seconds=1.0, times=1)
    result = await gw.send_sms([ROBI], "again", attempts=3)
    assert result.outcome == "ambiguous" and result.attempts == 1  # a timeout is never repeated
    assert len(mem_env.calls(mem_env.bdapps, "/sms/send")) == 3


@pytest.mark.parametrize("body, problem", [
    ({"applicationId": APP_ID, "password": "wrong", "message": "x", "destinationAddresses": [ROBI]}, "E1313"),
    ({"applicationId": APP_ID, "password": PASSWORD, "message": "x"}, "E1312"),
    ({"applicationId": APP_ID, "password": PASSWORD, "message": "x", "destinationAddresses": []}, "E1312"),
    ({"applicationId": APP_ID, "password": PASSWORD, "destinationAddresses": [ROBI]}, "E1312"),
    ({"applicationId": APP_ID, "password": PASSWORD, "message": "x", "destinationAddresses": [ROBI],
      "encoding": "440"}, "E1312"),
    ({"applicationId": APP_ID, "password": PASSWORD, "message": "x", "destinationAddresses": ["8801812345678"]},
     "E1341"),
])
async def test_fake_checks_sms_send_like_the_gateway(mem_env: Env, body: dict, problem: str) -> None:
    async with mem_env.http.post(mem_env.urls["bdapps"] + "/sms/send", json=body) as resp:
        answer = await resp.json()
    assert answer["statusCode"] == problem
    assert mem_env.bdapps_sms == []


def test_parse_seed_answers_liberally() -> None:
    seed = {"statusCode": "S1000", "requestId": "101307311144070043",
            "statusDetail": "Request was successfully processed",
            "destinationResponses": [{"statusCode": "S1000", "timeStamp": "20130731114407",
                                      "address": "tel : 8801812345677",
                                      "statusDetail": "Request was successfully processed",
                                      "messageId": "101307311144070043"}], "version": "1.0"}
    result = parse_sms_answer(seed)
    assert result.ok and result.message_ids == ("101307311144070043",)
    assert result.destinations[0].address_key == "tel:8801812345677"

    # the seed's parameter table: capitalised keys, a misspelt wrapper, numbers as numbers
    table = {"StatusCode": "S1000", "RequestId": 55, "DesinationResponses": {"DestinationResponse": [
        {"Address": "tel: +880183216345490", "TimeStamp": "20130731114407", "MessageId": 1213,
         "StatusCode": "S1000", "StatusDetail": "Success"}]}}
    result = parse_sms_answer(table)
    assert result.ok and result.request_id == "55" and result.message_ids == ("1213",)

    bare = parse_sms_answer({"statusCode": "S1000", "requestId": "9"})  # no destination list
    assert bare.ok and bare.message_ids == ("9",)


