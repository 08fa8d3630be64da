"""DiniSoft client against its contract fake over real HTTP (seed 003)."""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import structlog
from aiohttp import web

from server.integrations.base import (
    Timeouts, UpstreamAuthError, UpstreamConnectError, UpstreamError, UpstreamMalformed,
    UpstreamRejected, UpstreamTimeout, UpstreamUnavailable,
)
from server.integrations.dinisoft import BALANCE_PATH, DiniSoftClient
from server.integrations.sms_parts import InvalidRecipient, RecipientStatus, SmsAccepted, SmsFailed
from server.sandbox.dinisoft import DINISOFT_STATE, DiniSoftState, create_dinisoft_fake
from server.sandbox.faults import FAULTS_KEY, Fault, FaultBook

API_KEY, SECRET, CALLER_ID = "sandbox-key", "sandbox-secret", "8809612345678"
BENGALI = "আপনার রিচার্জ সফল হয়েছে। ধন্যবাদ!"


@dataclass
class Env:
    app: web.Application
    client: DiniSoftClient

    @property
    def book(self) -> FaultBook:
        return self.app[FAULTS_KEY]

    @property
    def state(self) -> DiniSoftState:
        return self.app[DINISOFT_STATE]

    def fault(self, endpoint: str, mode: str, **kwargs: Any) -> None:
        self.book.add(Fault(endpoint=endpoint, mode=mode, **kwargs))

    def queries(self, endpoint: str) -> list[dict[str, str]]:
        return [c["query"] for c in self.book.calls_to(endpoint)]


@pytest.fixture
async def start(aiohttp_server):
    clients: list[DiniSoftClient] = []

    async def _start(*, api_key: str = API_KEY, secret: str = SECRET, client_name: str | None = "sandbox",
                     **fake_kwargs: Any) -> Env:
        app = create_dinisoft_fake(API_KEY, SECRET, **fake_kwargs)
        server = await aiohttp_server(app)
        url = str(server.make_url("")).rstrip("/")
        client = DiniSoftClient(url, api_key, secret, CALLER_ID, timeouts=Timeouts(read=0.3),
                                balance_url=url + BALANCE_PATH, client_name=client_name)
        clients.append(client)
        return Env(app, client)

    yield _start
    for client in clients:
        await client.aclose()


@pytest.fixture
async def env(start) -> Env:
    return await start()


# --- happy paths and wire fields ------------------------------------------------------------

@pytest.mark.parametrize("to", ["01711111111", "8801711111111", "+8801711111111", "tel: 8801711111111"])
async def test_send_text_wire_fields(env: Env, to: str) -> None:
    result = await env.client.send_text(to, "Hello")

    assert result == SmsAccepted("dinisoft", ("194234",), 1,
                                 (RecipientStatus("8801711111111", True, "ACCEPTD"),))
    assert env.queries("/sendtext") == [{"apikey": API_KEY, "secretkey": SECRET, "callerID": CALLER_ID,
                                         "toUser": "8801711111111", "messageContent": "Hello"}]


async def test_bengali_round_trip_parts_and_balance(env: Env) -> None:
    short = await env.client.send_text("01711111111", BENGALI)
    long = await env.client.send_text("01711111111", "আ" * 71)

    assert (short.parts, long.parts) == (1, 2)
    assert [q["messageContent"] for q in env.queries("/sendtext")] == [BENGALI, "আ" * 71]
    assert env.state.messages[long.message_id].text == "আ" * 71
    assert (await env.client.balance()).amount == Decimal("9.25")  # 10 - 3 parts x 0.25
    assert env.queries("/balance") == [{"client": "sandbox"}]


async def test_status_pending_then_delivered_then_already_queried(env: Env) -> None:
    sent = await env.client.send_text("01711111111", "hi")

    pending = await env.client.get_status(sent.message_id)
    delivered = await env.client.get_status(sent.message_id)

    assert (pending.state, pending.provider_status, pending.final) == ("pending", "PENDING", False)
    assert (delivered.state, delivered.provider_status, delivered.final) == ("delivered", "DELIVRD", True)
    assert delivered.delivered_at is not None
    assert env.queries("/getstatus")[0] == {"apikey": API_KEY, "secretkey": SECRET, "messageid": "194234"}
    with pytest.raises(UpstreamRejected) as err:  # seed: "query has been done already"
        await env.client.get_status(sent.message_id)
    assert (err.value.code, err.value.retryable) == ("114", False)


async def test_configurable_status_sequence(start) -> None:
    env = await start(status_sequence=("PENDING", "SENT", "FAILED"))
    sent = await env.client.send_text("01711111111", "hi")
    states = [(await env.client.get_status(sent.message_id)).state for _ in range(3)]
    assert states == ["pending", "sent", "failed"]


async def test_wrong_credentials_from_the_fake(start) -> None:
    env = await start(secret="wrong")
    with pytest.raises(UpstreamAuthError) as err:
        await env.client.send_text("01711111111", "hi")
    assert (err.value.code, err.value.retryable) == ("108", False)

    env = await start(api_key="unknown")
    with pytest.raises(UpstreamAuthError) as err:
        await env.client.send_text("01711111111", "hi")
    assert err.value.code == "109"
    with pytest.raises(UpstreamAuthError) as err:
        await env.client.get_status("194234")
    assert err.value.code == "-42"


async def test_ip_not_allowed_from_the_fake(start) -> None:
    env = await start(allowed_ips=("10.9.9.9",))
    with pytest.raises(UpstreamAuthError) as err:
        await env.client.send_text("01711111111", "hi")
    assert err.value.code == "5400" and env.state.messages == {}


async def test_empty_text_and_low_balance_from_the_fake(start) -> None:
    env = await start(balance="0.10")
    with pytest.raises(UpstreamRejected) as err:
        await env.client.send_text("01711111111", "")
    assert err.value.code == "114"
    with pytest.raises(SmsFailed) as err:
        await env.client.send_text("01711111111", "hi")
    assert (err.value.code, err.value.retryable) == ("1", False)


async def test_invalid_number_never_calls(env: Env) -> None:
    for bad in ("01211111111", "tel:B%3C4pbgsm", "", "+447911123456"):
        with pytest.raises(InvalidRecipient):
            await env.client.send_text(bad, "hi")
    assert env.book.calls == []


async def test_balance_without_client_name_never_calls(start) -> None:
    env = await start(client_name=None)
    with pytest.raises(UpstreamAuthError):
        await env.client.balance()
    assert env.book.calls == []


async def test_balance_not_a_number(start) -> None:
    env = await start(client_name="someone-else")
    with pytest.raises(UpstreamMalformed):
        await env.client.balance()


# --- the seed's bodies, verbatim ------------------------------------------------------------

async def test_seed_submit_sample(env: Env) -> None:
    env.fault("/sendtext", "body", json={"Status": "0", "Text": "ACCEPTD", "Message_ID": "194234"})
    assert (await env.client.send_text("01711111111", "hi")).message_id == "194234"


async def test_seed_accepted_without_message_id(env: Env) -> None:
    env.fault("/sendtext", "body", json={"Status": "0", "Text": "Acceptd"})
    result = await env.client.send_text("01711111111", "hi")
    assert result.message_ids == () and result.recipients[0].accepted


async def test_seed_delivery_sample(env: Env) -> None:
    env.fault("/getstatus", "body", json={"Status": "0", "Text": "DELIVRD", "Message_ID": "194234",
                                          "Delivery Time": "1586420396602"})
    status = await env.client.get_status("194234")
    assert status.state == "delivered"
    assert status.delivered_at is not None and status.delivered_at.isoformat().startswith("2020-04-09T08:19:56")


SUBMIT_CODES = [
    ("109", UpstreamAuthError, False),    # user not provided / deleted
    ("108", UpstreamAuthError, False),    # wrong password / not provided
    ("114", UpstreamRejected, False),     # content not provided
    ("101", UpstreamUnavailable, True),   # internal server error
    ("1", SmsFailed, False),              # request failed
    ("5400", UpstreamAuthError, False),   # source IP not allowed
    ("-42", UpstreamAuthError, False),    # authorization failed
    ("777", UpstreamRejected, False),     # undocumented
]


@pytest.mark.parametrize("status, error, retryable", SUBMIT_CODES)
async def test_submit_codes(env: Env, status: str, error: type[UpstreamError], retryable: bool) -> None:
    body = {"Status": status, "Text": "REJECTD"}
    if status == "5400":
        body["Message_ID"] = ""
    env.fault("/sendtext", "body", json=body)
    with pytest.raises(error) as err:
        await env.client.send_text("01711111111", "hi")
    assert type(err.value) is error
    assert (err.value.code, err.value.retryable) == (status, retryable)


DELIVERY_ERRORS = [
    ("109", UpstreamAuthError, False),    # api key not provided
    ("108", UpstreamAuthError, False),    # wrong password
    ("114", UpstreamRejected, False),     # message id missing / invalid / already queried
    ("101", UpstreamUnavailable, True),   # internal server error
    ("-42", UpstreamAuthError, False),    # authorization failed
]


@pytest.mark.parametrize("status, error, retryable", DELIVERY_ERRORS)
async def test_delivery_error_codes(env: Env, status: str, error: type[UpstreamError], retryable: bool) -> None:
    env.fault("/getstatus", "body", json={"Status": status, "Text": "REJECTD"})
    with pytest.raises(error) as err:
        await env.client.get_status("194234")
    assert type(err.value) is error
    assert (err.value.code, err.value.retryable) == (status, retryable)


@pytest.mark.parametrize("body, state", [
    ({"Status": "1", "Text": "REJECTD"}, "failed"),
    ({"Status": "2", "Text": "PENDING"}, "pending"),
    ({"Status": "4", "Text": "SENT"}, "sent"),
    ({"Status": "0", "Text": "DELIVRD"}, "delivered"),
    ({"Status": 4, "Text": "SENT"}, "sent"),  # a number instead of a string
])
async def test_delivery_states(env: Env, body: dict[str, Any], state: str) -> None:
    env.fault("/getstatus", "body", json=body)
    result = await env.client.get_status("194234")
    assert (result.message_id, result.state, result.provider_status) == ("194234", state, body["Text"])


# --- transport failures ---------------------------------------------------------------------

@pytest.mark.parametrize("status, error, retryable", [
    (401, UpstreamAuthError, False),
    (404, UpstreamRejected, False),
    (500, UpstreamUnavailable, True),
    (502, UpstreamUnavailable, True),
])
async def test_http_status(env: Env, status: int, error: type[UpstreamError], retryable: bool) -> None:
    env.fault("*", "status", status=status)
    for call in (env.client.send_text("01711111111", "hi"), env.client.get_status("1"), env.client.balance()):
        with pytest.raises(error) as err:
            await call
        assert type(err.value) is error
        assert (err.value.http_status, err.value.retryable) == (status, retryable)


@pytest.mark.parametrize("body", [None, ["Status", "0"], {"Text": "ACCEPTD"}])
async def test_malformed(env: Env, body: Any) -> None:
    if body is None:
        env.fault("*", "malformed")
    else:
        env.fault("*", "body", json=body)
    with pytest.raises(UpstreamMalformed):
        await env.client.send_text("01711111111", "hi")
    with pytest.raises(UpstreamMalformed):
        await env.client.get_status("194234")


async def test_timeout_means_maybe_sent(env: Env) -> None:
    env.fault("/sendtext", "delay", seconds=0.8)
    with pytest.raises(UpstreamTimeout) as err:
        await env.client.send_text("01711111111", "hi")
    assert err.value.retryable is True
    assert len(env.book.calls_to("/sendtext")) == 1  # it reached the gateway: may have been sent


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = DiniSoftClient(f"http://127.0.0.1:{port}", API_KEY, SECRET, CALLER_ID)
    try:
        with pytest.raises(UpstreamConnectError) as err:
            await client.send_text("01711111111", "hi")
        assert err.value.retryable is True
    finally:
        await client.aclose()


async def test_no_log_line_or_error_carries_the_keys(env: Env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        sent = await env.client.send_text("01711111111", "hi")
        await env.client.get_status(sent.message_id)
        env.fault("*", "status", status=503)
        with pytest.raises(UpstreamUnavailable) as err:
            await env.client.send_text("01711111111", "hi")
    assert logs and all(API_KEY not in repr(e) and SECRET not in repr(e) for e in logs)
    ours = [r for r in caplog.records if not r.name.startswith("aiohttp")]  # aiohttp.access: the fake's log
    assert any(r.name == "httpx" for r in ours)
    assert all(API_KEY not in r.getMessage() and SECRET not in r.getMessage() for r in ours)
    assert SECRET not in str(err.value)
