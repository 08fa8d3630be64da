"""AamarSMS client against its contract fake over real HTTP (seed 002)."""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import structlog
from aiohttp import web

from server.integrations.aamarsms import AamarSmsClient
from server.integrations.base import (
    Timeouts, UpstreamAuthError, UpstreamConnectError, UpstreamError, UpstreamMalformed,
    UpstreamRejected, UpstreamTimeout, UpstreamUnavailable,
)
from server.integrations.sms_parts import (
    InsufficientBalance, InvalidRecipient, RecipientStatus, SmsAccepted, SmsFailed,
)
from server.sandbox.aamarsms import AAMARSMS_STATE, AamarSmsState, create_aamarsms_fake
from server.sandbox.faults import FAULTS_KEY, Fault, FaultBook

USER, PASSWORD, SENDER = "sandbox", "sandbox-pass", "Alap"
BENGALI = "আপনার পার্সেল ঢাকায় পৌঁছেছে। ধন্যবাদ!"


@dataclass
class Env:
    app: web.Application
    client: AamarSmsClient
    url: str

    @property
    def book(self) -> FaultBook:
        return self.app[FAULTS_KEY]

    @property
    def state(self) -> AamarSmsState:
        return self.app[AAMARSMS_STATE]

    def fault(self, endpoint: str, mode: str, **kwargs: Any) -> None:
        self.book.add(Fault(endpoint=endpoint, mode=mode, **kwargs))

    def queries(self, endpoint: str) -> list[dict[str, str]]:
        return [c["query"] for c in self.book.calls_to(endpoint)]


@pytest.fixture
async def start(aiohttp_server):
    clients: list[AamarSmsClient] = []

    async def _start(*, password: str = PASSWORD, **fake_kwargs: Any) -> Env:
        app = create_aamarsms_fake(USER, PASSWORD, **fake_kwargs)
        server = await aiohttp_server(app)
        url = str(server.make_url(""))
        client = AamarSmsClient(url, USER, password, SENDER, timeouts=Timeouts(read=0.3))
        clients.append(client)
        return Env(app, client, url)

    yield _start
    for client in clients:
        await client.aclose()


@pytest.fixture
async def env(start) -> Env:
    return await start()


# --- happy paths and wire fields ------------------------------------------------------------

async def test_send_bulk_single_number_wire_fields(env: Env) -> None:
    result = await env.client.send_bulk("01711111111", "Hello Mr.X , how are you?")

    assert result == SmsAccepted("aamarsms", (), 1, (RecipientStatus("8801711111111", True, "Sent"),),
                                 Decimal("0.25"))
    assert env.queries("/api") == [{"user": USER, "password": PASSWORD, "from": SENDER,
                                    "to": "8801711111111", "text": "Hello Mr.X , how are you?"}]
    assert env.state.balance == Decimal("99.75")


async def test_send_bulk_many_numbers_in_any_format(env: Env) -> None:
    result = await env.client.send_bulk(
        ["01711111111", "+8801811111111", "tel: 8801911111111"], "hi")

    assert env.queries("/api")[0]["to"] == "8801711111111,8801811111111,8801911111111"
    assert [r.msisdn for r in result.recipients] == ["8801711111111", "8801811111111", "8801911111111"]
    assert result.failed == ()
    assert result.cost == Decimal("0.75")
    assert sorted(m.to for m in env.state.messages.values()) == [
        "8801711111111", "8801811111111", "8801911111111"]


async def test_bengali_text_round_trip_and_parts(env: Env) -> None:
    text = "আ" * 71  # one over the UCS-2 single-part limit
    result = await env.client.send_bulk("8801711111111", text)

    assert result.parts == 2
    assert env.queries("/api")[0]["text"] == text
    (stored,) = env.state.messages.values()
    assert stored.text == text and stored.parts == 2
    assert env.state.balance == Decimal("99.50")

    short = await env.client.send_otp("8801711111111", BENGALI)
    assert short.parts == 1
    assert env.queries("/otp")[0]["text"] == BENGALI


async def test_send_otp(env: Env) -> None:
    result = await env.client.send_otp("+8801711111111", "Your OTP is 1234.")

    assert result.recipients == (RecipientStatus("8801711111111", True, "Delivered"),)
    assert result.parts == 1 and result.cost == Decimal("0.25")
    assert env.queries("/otp") == [{"user": USER, "password": PASSWORD, "from": SENDER,
                                    "to": "8801711111111", "text": "Your OTP is 1234."}]


async def test_delivery_status_of_a_stored_message(start) -> None:
    env = await start(status_sequence=("SENT", "FAILED"))
    await env.client.send_bulk("01711111111", "hi")
    (smsid,) = env.state.messages

    first = await env.client.delivery_status(smsid)
    second = await env.client.delivery_status(smsid)

    assert (first.state, first.provider_status, first.final) == ("sent", "SENT", False)
    assert (second.state, second.final) == ("failed", True)
    assert env.queries("/smsstatus")[0] == {"user": USER, "password": PASSWORD, "smsid": smsid}
    assert smsid.endswith("-1711111111")


async def test_delivery_status_unknown_smsid(env: Env) -> None:
    with pytest.raises(UpstreamRejected) as err:
        await env.client.delivery_status("999-1700000000")
    assert err.value.code == "109" and err.value.retryable is False


async def test_balance_decreases_per_part(env: Env) -> None:
    assert (await env.client.balance()).amount == Decimal("100")
    await env.client.send_bulk(["01711111111", "01811111111"], "a" * 161)  # 2 parts x 2 numbers
    assert (await env.client.balance()).amount == Decimal("99")
    assert env.queries("/balance")[0] == {"user": USER, "password": PASSWORD}


async def test_balance_too_low_from_the_fake(start) -> None:
    env = await start(balance="0.10")
    with pytest.raises(InsufficientBalance) as err:
        await env.client.send_bulk("01711111111", "hi")
    assert err.value.code == "106" and err.value.retryable is True
    assert env.state.messages == {}


async def test_wrong_password_from_the_fake(start) -> None:
    env = await start(password="wrong")
    for call in (env.client.send_bulk("01711111111", "hi"), env.client.balance()):
        with pytest.raises(UpstreamAuthError) as err:
            await call
        assert err.value.code == "105" and err.value.retryable is False


async def test_invalid_number_never_calls(env: Env) -> None:
    for bad in (["01211111111"], ["01711111111", "tel:B%3C4pbgsm"], []):
        with pytest.raises(InvalidRecipient) as err:
            await env.client.send_bulk(bad, "hi")
        assert err.value.retryable is False
    with pytest.raises(InvalidRecipient):
        await env.client.send_otp("12345", "hi")
    assert env.book.calls == []


async def test_text_too_long_from_the_fake(start) -> None:
    env = await start(max_parts=2)
    with pytest.raises(UpstreamRejected) as err:
        await env.client.send_bulk("01711111111", "আ" * 135)
    assert err.value.code == "108" and err.value.retryable is False


# --- the seed's bodies, verbatim ------------------------------------------------------------

SEED_BULK = {
    "success": 1, "message": "SMS send successfully.", "response_code": 100, "campaign_cost": 0.5,
    "delivery_status": [
        {"MSISDN": "8801829673377", "Status": 1, "StatusText": "Sent"},
        {"MSISDN": "8801730085980", "Status": 0, "StatusText": "Failed"},
    ],
}
SEED_OTP = {"success": 1, "message": "SMS send successfully.", "response_code": 100,
            "campaign_cost": 0.50, "status": "Delivered"}
SEED_STATUS = {"success": 1, "response_code": 100, "message": "SMS send successfully", "STATUS": "SENT"}
SEED_BALANCE = {"message": "Active Balance Available", "response_code": 110, "AVAILABLE BALANCE =": "502.56559"}


async def test_seed_bulk_sample_partial_failure(env: Env) -> None:
    env.fault("/api", "body", json=SEED_BULK)
    result = await env.client.send_bulk(["8801829673377", "8801730085980"], "hi")
    assert result.failed == ("8801730085980",)
    assert result.cost == Decimal("0.5")


async def test_bulk_all_failed_is_sms_failed(env: Env) -> None:
    body = {**SEED_BULK, "success": 0, "delivery_status": [SEED_BULK["delivery_status"][1]]}
    env.fault("/api", "body", json=body)
    with pytest.raises(SmsFailed) as err:
        await env.client.send_bulk("8801730085980", "hi")
    assert err.value.retryable is False


async def test_seed_otp_sample_and_failed_status(env: Env) -> None:
    env.fault("/otp", "body", json=SEED_OTP, times=1)
    assert (await env.client.send_otp("01711111111", "1234")).recipients[0].status == "Delivered"

    env.fault("/otp", "body", json={**SEED_OTP, "success": 0, "status": "Failed"})
    with pytest.raises(SmsFailed):
        await env.client.send_otp("01711111111", "1234")


async def test_seed_status_and_balance_samples(env: Env) -> None:
    env.fault("/smsstatus", "body", json=SEED_STATUS)
    env.fault("/balance", "body", json=SEED_BALANCE)
    status = await env.client.delivery_status("910-17XXXXXXX")
    assert (status.message_id, status.state) == ("910-17XXXXXXX", "sent")
    assert (await env.client.balance()).amount == Decimal("502.56559")


async def test_balance_106_means_zero(env: Env) -> None:
    env.fault("/balance", "body", json={"message": "No Credits available", "response_code": 106})
    assert (await env.client.balance()).amount == Decimal(0)


async def test_smsid_picked_up_when_present(env: Env) -> None:
    env.fault("/api", "body", json={**SEED_OTP, "smsid": "910-1711111111"})
    assert (await env.client.send_bulk("01711111111", "hi")).message_id == "910-1711111111"


SEND_CODES = [
    (101, "Username empty.", UpstreamAuthError, False),
    (102, "Password empty.", UpstreamAuthError, False),
    (103, "Recipient number empty.", InvalidRecipient, False),
    (104, "Message text empty.", UpstreamRejected, False),
    (105, "Invalid credential.", UpstreamAuthError, False),
    (106, "Your Balance is not sufficient.", InsufficientBalance, True),
    (107, "Reseller balance is not sufficient.", InsufficientBalance, True),
    (108, "Message text is too long.", UpstreamRejected, False),
    (999, "Something new.", UpstreamRejected, False),
]


@pytest.mark.parametrize("endpoint", ["/api", "/otp"])
@pytest.mark.parametrize("code, message, error, retryable", SEND_CODES)
async def test_send_response_codes(env: Env, endpoint: str, code: int, message: str,
                                   error: type[UpstreamError], retryable: bool) -> None:
    env.fault(endpoint, "body", json={"success": 0, "message": message, "response_code": code})
    call = env.client.send_bulk if endpoint == "/api" else env.client.send_otp
    with pytest.raises(error) as err:
        await call("01711111111", "hi")
    assert type(err.value) is error
    assert (err.value.code, err.value.retryable) == (str(code), retryable)
    assert message in err.value.detail


@pytest.mark.parametrize("code, error", [(101, UpstreamAuthError), (102, UpstreamAuthError),
                                         (105, UpstreamAuthError), (109, UpstreamRejected)])
async def test_status_response_codes(env: Env, code: int, error: type[UpstreamError]) -> None:
    env.fault("/smsstatus", "body", json={"success": 0, "message": "x", "response_code": code})
    with pytest.raises(error) as err:
        await env.client.delivery_status("910-1711111111")
    assert (err.value.code, err.value.retryable) == (str(code), False)


@pytest.mark.parametrize("code", [101, 102, 105])
async def test_balance_response_codes(env: Env, code: int) -> None:
    env.fault("/balance", "body", json={"message": "x", "response_code": code})
    with pytest.raises(UpstreamAuthError) as err:
        await env.client.balance()
    assert err.value.code == str(code)


# --- transport failures ---------------------------------------------------------------------

@pytest.mark.parametrize("status, error, retryable", [
    (401, UpstreamAuthError, False),
    (403, UpstreamAuthError, False),
    (404, UpstreamRejected, False),
    (500, UpstreamUnavailable, True),
    (503, UpstreamUnavailable, True),
])
async def test_http_status(env: Env, status: int, error: type[UpstreamError], retryable: bool) -> None:
    env.fault("*", "status", status=status)
    with pytest.raises(error) as err:
        await env.client.send_bulk("01711111111", "hi")
    assert type(err.value) is error
    assert (err.value.http_status, err.value.retryable) == (status, retryable)


@pytest.mark.parametrize("body", [None, [1, 2], {"success": 1}, {"response_code": 100}])
async def test_malformed(env: Env, body: Any) -> None:
    if body is None:
        env.fault("*", "malformed")
    else:
        env.fault("*", "body", json=body)
    with pytest.raises(UpstreamMalformed):
        if body == {"response_code": 100}:  # status without STATUS
            await env.client.delivery_status("910-1")
        else:
            await env.client.send_bulk("01711111111", "hi")


async def test_timeout_means_maybe_sent(env: Env) -> None:
    env.fault("/api", "delay", seconds=0.8)
    with pytest.raises(UpstreamTimeout) as err:
        await env.client.send_bulk("01711111111", "hi")
    assert err.value.retryable is True
    assert len(env.book.calls_to("/api")) == 1  # it reached the gateway: may have been sent


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AamarSmsClient(f"http://127.0.0.1:{port}", USER, PASSWORD, SENDER)
    try:
        with pytest.raises(UpstreamConnectError) as err:
            await client.send_otp("01711111111", "hi")
        assert err.value.retryable is True
    finally:
        await client.aclose()


async def test_no_log_line_or_error_carries_the_password(env: Env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        await env.client.send_bulk("01711111111", "hi")
        await env.client.balance()
        env.fault("*", "status", status=500)
        with pytest.raises(UpstreamUnavailable) as err:
            await env.client.balance()
    assert logs and all(PASSWORD not in repr(entry) for entry in logs)
    assert any("/api" in str(entry.get("path")) for entry in logs)
    # aiohttp.access is the fake gateway's own log, not ours.
    ours = [r for r in caplog.records if not r.name.startswith("aiohttp")]
    assert any(r.name == "httpx" for r in ours)
    assert all(PASSWORD not in r.getMessage() for r in ours)
    assert PASSWORD not in str(err.value)
