"""ECareClient against the eCare contract fake over real HTTP (seed 001)."""
from __future__ import annotations

import asyncio
import logging
import socket
from decimal import Decimal
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from server.integrations.base import (
    Timeouts,
    default_ssl_context,
    UpstreamAuthError,
    UpstreamConnectError,
    UpstreamMalformed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from server.integrations.ecare import (
    ECARE_DEFAULT_URL,
    ECareAuthError,
    ECareClient,
    ECareDuplicate,
    ECareInvalid,
    ECareInvalidRef,
    ECareLowBalance,
    ECareMaintenance,
    ECareRejected,
    NumberType,
    Operator,
    RechargeState,
)
from server.msisdn import require_local
from server.sandbox.ecare import ECARE_PATH, create_ecare_fake

SECRET = "s3cr3t-Pa55"

# The seed's documented answers, one JSON object per table column.
GENERAL_ERRORS = [
    ({"STATUS": "OK", "MESSAGE": "INVALID SERVICE"}, ECareInvalid, "INVALID_SERVICE", False),
    ({"STATUS": "INVALID", "MESSAGE": "Login Failed, Invalid Credential"}, ECareAuthError, "INVALID", False),
    ({"STATUS": "FAILED", "MESSAGE": "Login Failed"}, ECareAuthError, "FAILED", False),
    ({"STATUS": "MAINTENANCE", "MESSAGE": "Server Maintenance Mode Running, Try After Sometime"},
     ECareMaintenance, "MAINTENANCE", True),
]
MRC_ERRORS = [
    ({"STATUS": "FAILED", "RECHARGE_STATUS": "DUPLICATE",
      "MESSAGE": "Duplicate Reference or Duplicate Recharge Request"}, ECareDuplicate, "DUPLICATE"),
    ({"STATUS": "FAILED", "RECHARGE_STATUS": "LOWBALANCE", "MESSAGE": "Insufficient Wallet Balance"},
     ECareLowBalance, "LOWBALANCE"),
    ({"STATUS": "FAILED", "RECHARGE_STATUS": "FAILED", "MESSAGE": "Recharge Request Failed."},
     ECareRejected, "FAILED"),
    ({"STATUS": "FAILED", "RECHARGE_STATUS": "REJECT", "MESSAGE": "Sorry! Invalid Credentials."},
     ECareRejected, "REJECT"),
]
MRC_RECEIVED = {"STATUS": "OK", "RECHARGE_STATUS": "RECEIVED", "OPERATOR": "7", "NUMBER": "01700000000",
                "AMOUNT": "10", "TRXID": "MTS2336355464", "MESSAGE": "Your Mobile Recharge Request Received."}
MRCSTATUS_RESULTS = [
    ({"STATUS": "OK", "RECHARGE_STATUS": "PENDING", "RECHARGE_TRXID": "", "MESSAGE": ""},
     RechargeState.PENDING, None),
    ({"STATUS": "OK", "RECHARGE_STATUS": "FAILED", "RECHARGE_TRXID": "MTS2336355464", "MESSAGE": "Recharge SMS"},
     RechargeState.FAILED, "MTS2336355464"),
    ({"STATUS": "OK", "RECHARGE_STATUS": "SUCCESS", "RECHARGE_TRXID": "MTS2336355464", "MESSAGE": "Recharge SMS"},
     RechargeState.SUCCESS, "MTS2336355464"),
    ({"STATUS": "OK", "RECHARGE_STATUS": "PROCESSING"}, RechargeState.PROCESSING, None),
]
MRCSTATUS_INVALIDREF = {"STATUS": "FAILED", "RECHARGE_STATUS": "INVALIDREF", "MESSAGE": "Sorry! Invalid Reference"}
BLCK_OK = {"STATUS": "OK", "MAIN_BALANCE": "3,500.00", "STOCK_BALANCE": "30.00", "COMMISSION_TYPE": "Prepaid",
           "COMMISSION_RATE": "3.00", "MESSAGE": "Balance Equerry Success"}


@pytest.fixture
async def fake(aiohttp_server: Any) -> Any:
    return await aiohttp_server(create_ecare_fake(access_id="reseller", access_pass=SECRET))


@pytest.fixture
async def client(fake: Any) -> Any:
    async with ECareClient(str(fake.make_url(ECARE_PATH)), "reseller", SECRET,
                           timeouts=Timeouts(connect=0.5, read=0.3)) as c:
        yield c


async def control(fake: Any, method: str, path: str, json: Any = None) -> Any:
    # The product's shared TLS context: a default httpx client loads the CA bundle (~25 ms of CPU) each time.
    async with httpx.AsyncClient(verify=default_ssl_context()) as http:
        response = await http.request(method, str(fake.make_url(path)), json=json)
        response.raise_for_status()
        return response.json()


async def serve_body(fake: Any, service: str, body: Any) -> None:
    await control(fake, "POST", "/_control/faults", {"endpoint": service, "mode": "body", "json": body})


async def calls(fake: Any, service: str) -> list[dict[str, Any]]:
    return [c for c in await control(fake, "GET", "/_control/calls") if c["endpoint"] == service]


async def recharge(client: ECareClient, refid: str, amount: int = 20, number: str = "01712345678") -> Any:
    return await client.recharge(number, amount, Operator.GRAMEENPHONE, NumberType.PREPAID, refid)


SERVICE_CALLS = {
    "MRC": lambda c: recharge(c, "R-1"),
    "MRCSTATUS": lambda c: c.recharge_status("R-1"),
    "BLCK": lambda c: c.balance(),
    "OFFERPACK": lambda c: c.offer_packs(),
}


# --- every documented answer, served verbatim -------------------------------------------------


@pytest.mark.parametrize("service", list(SERVICE_CALLS))
@pytest.mark.parametrize("body,error,code,retryable", GENERAL_ERRORS)
async def test_general_errors_on_every_service(fake, client, service, body, error, code, retryable):
    await serve_body(fake, service, body)
    with pytest.raises(error) as info:
        await SERVICE_CALLS[service](client)
    assert info.value.code == code
    assert info.value.retryable is retryable


@pytest.mark.parametrize("body,error,code", MRC_ERRORS)
async def test_recharge_documented_failures(fake, client, body, error, code):
    await serve_body(fake, "MRC", body)
    with pytest.raises(error) as info:
        await recharge(client, "R-doc")
    assert info.value.code == code
    assert info.value.retryable is False
    assert isinstance(info.value, UpstreamRejected)


async def test_duplicate_is_not_a_definitive_no_money_refusal(fake, client):
    # A saga treats ECareRejected as "no money moved"; DUPLICATE must not be caught by it.
    await serve_body(fake, "MRC", MRC_ERRORS[0][0])
    with pytest.raises(ECareDuplicate) as info:
        await recharge(client, "R-dup")
    assert not isinstance(info.value, ECareRejected)


async def test_recharge_documented_received(fake, client):
    await serve_body(fake, "MRC", MRC_RECEIVED)
    submission = await client.recharge("01700000000", 10, Operator.GRAMEENPHONE, NumberType.PREPAID, "43645443643")
    assert submission.state is RechargeState.RECEIVED and not submission.state.final
    assert (submission.refid, submission.trxid, submission.operator, submission.number, submission.amount) == (
        "43645443643", "MTS2336355464", "7", "01700000000", Decimal(10))


@pytest.mark.parametrize("body,state,trxid", MRCSTATUS_RESULTS)
async def test_status_documented_states(fake, client, body, state, trxid):
    await serve_body(fake, "MRCSTATUS", body)
    status = await client.recharge_status("43645443643")
    assert (status.refid, status.state, status.trxid) == ("43645443643", state, trxid)


async def test_status_documented_invalid_ref(fake, client):
    await serve_body(fake, "MRCSTATUS", MRCSTATUS_INVALIDREF)
    with pytest.raises(ECareInvalidRef) as info:
        await client.recharge_status("nope")
    assert info.value.code == "INVALIDREF" and info.value.retryable is False


async def test_balance_documented(fake, client):
    await serve_body(fake, "BLCK", BLCK_OK)
    wallet = await client.balance()
    assert wallet.main_balance == Decimal("3500.00")
    assert wallet.stock_balance == Decimal("30.00")
    assert (wallet.commission_type, wallet.commission_rate) == ("Prepaid", Decimal("3.00"))


async def test_answer_in_a_list_and_lower_case_keys_is_accepted(fake, client):
    await serve_body(fake, "BLCK", [{k.lower(): v for k, v in BLCK_OK.items()}])
    assert (await client.balance()).main_balance == Decimal("3500.00")


# --- the stateful fake ----------------------------------------------------------------------


async def test_recharge_wire_fields_wallet_and_status_progression(fake, client):
    before = (await client.balance()).main_balance
    submission = await client.recharge("+8801712345678", Decimal("50"), Operator.GRAMEENPHONE,
                                       NumberType.PREPAID, "ledger-0001")
    assert submission.state is RechargeState.RECEIVED and submission.trxid

    [call] = await calls(fake, "MRC")
    assert {k: v for k, v in call["query"].items() if k != "access_pass"} == {
        "access_id": "reseller", "service": "MRC", "operator": "7", "number_type": "1",
        "number": "01712345678", "amount": "50", "refid": "ledger-0001"}
    assert (await client.balance()).main_balance == before - 50

    states = [(await client.recharge_status("ledger-0001")).state for _ in range(4)]
    assert states == [RechargeState.PENDING, RechargeState.PROCESSING, RechargeState.SUCCESS, RechargeState.SUCCESS]
    final = await client.recharge_status("ledger-0001")
    assert final.trxid == submission.trxid


async def test_reused_refid_answers_duplicate_and_moves_money_once(fake, client):
    await recharge(client, "ledger-0002", amount=30)
    after_first = (await client.balance()).main_balance
    with pytest.raises(ECareDuplicate):
        await recharge(client, "ledger-0002", amount=30)
    with pytest.raises(ECareDuplicate):  # a different number under the same refid too
        await recharge(client, "ledger-0002", amount=40, number="01812345678")
    assert len(await calls(fake, "MRC")) == 3
    assert (await client.balance()).main_balance == after_first
    assert len(await control(fake, "GET", "/_control/ecare/recharges")) == 1


async def test_scripted_failure_refunds_the_wallet(fake, client):
    await control(fake, "POST", "/_control/ecare/script", {"refid": "ledger-0003", "statuses": ["PROCESSING", "FAILED"]})
    before = (await client.balance()).main_balance
    await recharge(client, "ledger-0003", amount=100)
    assert (await client.balance()).main_balance == before - 100
    assert (await client.recharge_status("ledger-0003")).state is RechargeState.PROCESSING
    failed = await client.recharge_status("ledger-0003")
    assert failed.state is RechargeState.FAILED and failed.state.final
    assert (await client.balance()).main_balance == before


async def test_default_progression_is_configurable(fake, client):
    await control(fake, "POST", "/_control/ecare/default", {"statuses": ["SUCCESS"]})
    await recharge(client, "ledger-0004")
    assert (await client.recharge_status("ledger-0004")).state is RechargeState.SUCCESS


async def test_low_wallet_balance(fake, client):
    await control(fake, "POST", "/_control/ecare/wallet", {"main_balance": "15.00"})
    with pytest.raises(ECareLowBalance):
        await recharge(client, "ledger-0005", amount=20)
    assert (await client.balance()).main_balance == Decimal("15.00")
    with pytest.raises(ECareInvalidRef):  # refused submissions leave no recharge behind
        await client.recharge_status("ledger-0005")


async def test_unknown_refid_is_invalid_ref(client):
    with pytest.raises(ECareInvalidRef):
        await client.recharge_status("never-submitted")


async def test_offer_packs(client):
    packs = await client.offer_packs()
    assert len(packs) >= 8
    assert {p.operator for p in packs} >= {Operator.GRAMEENPHONE, Operator.BANGLALINK, Operator.ROBI,
                                           Operator.AIRTEL, Operator.TELETALK}
    assert all(p.price > 0 and p.title and p.validity and p.details and p.offer_id for p in packs)
    assert any(p.number_type is NumberType.SKITTO for p in packs)


@pytest.mark.parametrize("access_id,access_pass,code", [("reseller", "wrong", "INVALID"), ("nobody", SECRET, "FAILED")])
async def test_wrong_credentials(fake, access_id, access_pass, code):
    async with ECareClient(str(fake.make_url(ECARE_PATH)), access_id, access_pass) as bad:
        with pytest.raises(ECareAuthError) as info:
            await bad.balance()
    assert info.value.code == code and info.value.retryable is False


async def test_maintenance_mode(fake, client):
    await control(fake, "POST", "/_control/ecare/maintenance", {"on": True})
    with pytest.raises(ECareMaintenance) as info:
        await recharge(client, "ledger-0006")
    assert info.value.retryable is True


# --- transport failures ---------------------------------------------------------------------


@pytest.mark.parametrize("status,error,retryable", [
    (401, UpstreamAuthError, False), (404, UpstreamRejected, False),
    (500, UpstreamUnavailable, True), (503, UpstreamUnavailable, True)])
async def test_http_status(fake, client, status, error, retryable):
    await control(fake, "POST", "/_control/faults", {"endpoint": "*", "mode": "status", "status": status})
    with pytest.raises(error) as info:
        await client.balance()
    assert info.value.http_status == status and info.value.retryable is retryable


async def test_money_call_is_never_retried_but_reads_are(fake, client):
    await control(fake, "POST", "/_control/faults", {"endpoint": "MRC", "mode": "status", "status": 503})
    with pytest.raises(UpstreamUnavailable):
        await recharge(client, "ledger-0007")
    assert len(await calls(fake, "MRC")) == 1

    await control(fake, "POST", "/_control/faults", {"endpoint": "BLCK", "mode": "status", "status": 503, "times": 1})
    assert (await client.balance()).main_balance > 0
    assert len(await calls(fake, "BLCK")) == 2


async def test_malformed_body(fake, client):
    await control(fake, "POST", "/_control/faults", {"endpoint": "MRC", "mode": "malformed"})
    with pytest.raises(UpstreamMalformed):
        await recharge(client, "ledger-0008")


async def test_unknown_mrc_answer_is_malformed_not_success(fake, client):
    await serve_body(fake, "MRC", {"STATUS": "OK", "RECHARGE_STATUS": "SOMETHING"})
    with pytest.raises(UpstreamMalformed):
        await recharge(client, "ledger-0009")


async def test_timeout_then_same_refid_finds_the_recharge(fake, client):
    await control(fake, "POST", "/_control/faults", {"endpoint": "MRC", "mode": "delay", "seconds": 0.8, "times": 1})
    with pytest.raises(UpstreamTimeout) as info:
        await recharge(client, "ledger-0010")
    assert info.value.retryable is True
    for _ in range(50):  # the fake finishes the slow request after we gave up on it
        if await control(fake, "GET", "/_control/ecare/recharges"):
            break
        await asyncio.sleep(0.05)
    assert (await client.recharge_status("ledger-0010")).state is RechargeState.PENDING
    with pytest.raises(ECareDuplicate):
        await recharge(client, "ledger-0010")


async def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ECareClient(f"http://127.0.0.1:{port}{ECARE_PATH}", "reseller", SECRET) as c:
        with pytest.raises(UpstreamConnectError) as info:
            await recharge(c, "ledger-0011")
    assert info.value.retryable is True


async def test_credentials_never_logged(fake, client, caplog):
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        await client.balance()
        await recharge(client, "ledger-0012")
        await control(fake, "POST", "/_control/faults", {"endpoint": "BLCK", "mode": "status", "status": 500})
        with pytest.raises(UpstreamUnavailable) as info:
            await client.balance()
    assert events and any(e.get("path", "").endswith("recharge_api_thirdparty.php") for e in events)
    assert SECRET not in repr(events)
    assert SECRET not in caplog.text
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.__dict__)


# --- inputs ---------------------------------------------------------------------------------


def test_default_url_is_the_seeds():
    assert ECARE_DEFAULT_URL == "http://118.179.129.98/myportal/api/rechargeapi/recharge_api_thirdparty.php"


@pytest.mark.parametrize("raw,local,operator", [
    ("01712345678", "01712345678", Operator.GRAMEENPHONE), ("8801312345678", "01312345678", Operator.GRAMEENPHONE_013),
    ("+8801912345678", "01912345678", Operator.BANGLALINK), ("tel:8801412345678", "01412345678", Operator.BANGLALINK_014),
    ("01812345678", "01812345678", Operator.ROBI), ("01612345678", "01612345678", Operator.AIRTEL),
    ("01512345678", "01512345678", Operator.TELETALK)])
def test_msisdn_and_operator(raw, local, operator):
    assert require_local(raw) == local
    assert Operator.for_msisdn(raw) is operator


@pytest.mark.parametrize("msisdn,amount,exc", [
    ("01212345678", 20, ValueError), ("tel:B%3C4pbgsm", 20, ValueError),
    ("01712345678", Decimal("20.5"), ValueError), ("01712345678", 0, ValueError),
    ("01712345678", 20.0, TypeError)])
async def test_bad_inputs_never_reach_the_wire(fake, client, msisdn, amount, exc):
    with pytest.raises(exc):
        await client.recharge(msisdn, amount, Operator.GRAMEENPHONE, NumberType.PREPAID, "ledger-x")
    with pytest.raises(ValueError):
        await client.recharge("01712345678", 20, Operator.GRAMEENPHONE, NumberType.PREPAID, "")
    assert await calls(fake, "MRC") == []
