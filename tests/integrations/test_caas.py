"""CaasClient against the BDApps CAAS contract fake over real HTTP (seed 004, section 5)."""
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
from server.integrations.caas import (
    CaasAuthError,
    CaasChargeDeclined,
    CaasClient,
    CaasDuplicate,
    CaasInsufficientBalance,
    CaasInvalidRequest,
    CaasRejected,
    CaasTemporaryError,
    format_amount,
)
from server.sandbox.caas import create_caas_fake

APP_ID, PASSWORD = "APP_000010", "8f57d2e8de06e6f2d6ee5da6107d0a4f"
MASKED = "tel:B%3C4pbgsmXQ7Lk2iYp0aR1dZ"
ROBI = "tel:8801812345678"
DEBIT = "/caas/direct/debit"
BALANCE = "/caas/balance/query"
LIST_PI = "/caas/list/pi"

# Appendix A, every code: (class, retryable).
APPENDIX_A = {
    "E1313": (CaasAuthError, False), "E1303": (CaasAuthError, False),
    "E1312": (CaasInvalidRequest, False), "E1325": (CaasInvalidRequest, False),
    "E1317": (CaasInvalidRequest, False), "E1308": (CaasChargeDeclined, False),
    "E1337": (CaasDuplicate, False),
    "E1309": (CaasRejected, False), "E1311": (CaasRejected, False), "E1315": (CaasRejected, False),
    "E1328": (CaasRejected, False), "E1341": (CaasRejected, False), "E1334": (CaasRejected, False),
    "E1335": (CaasRejected, False), "E1601": (CaasRejected, False), "E1342": (CaasRejected, False),
    "E1343": (CaasRejected, False), "E1331": (CaasRejected, False),
    "E1318": (CaasTemporaryError, True), "E1319": (CaasTemporaryError, True),
    "E1326": (CaasInsufficientBalance, True), "E1602": (CaasTemporaryError, True),
    "E1603": (CaasTemporaryError, True),
}
SAMPLE_BALANCE = {"statusCode": "S1000", "chargeableBalance": "100", "statusDetail": "Request was successfully processed",
                  "accountStatus": "0", "accountType": "PREPAID"}
SAMPLE_PI = {"statusCode": "S1000", "statusDetail": "Success",
             "paymentInstrumentList": [{"name": "Mobile Account", "type": "sync"}]}
SAMPLE_DEBIT = {"statusCode": "S1000", "timeStamp": "2013-08-01T08:43:34.344+05:30", "externalTrxId": "25609",
                "statusDetail": "Request was successfully processed", "internalTrxId": "913080108430074"}


@pytest.fixture
async def fake(aiohttp_server: Any) -> Any:
    return await aiohttp_server(create_caas_fake(app_id=APP_ID, password=PASSWORD))


@pytest.fixture
async def client(fake: Any) -> Any:
    async with CaasClient(str(fake.make_url("/")), APP_ID, PASSWORD,
                          timeouts=Timeouts(connect=0.5, read=0.3)) as c:
        yield c


async def control(fake: Any, method: str, path: str, json: Any = None) -> Any:
    # The product's shared TLS context: a default httpx client loads the CA bundle (~25 ms of CPU) each time.
    async with httpx.AsyncClient(verify=default_ssl_context()) as http:
        response = await http.request(method, str(fake.make_url(path)), json=json)
        response.raise_for_status()
        return response.json()


async def fault(fake: Any, **spec: Any) -> None:
    await control(fake, "POST", "/_control/faults", spec)


async def calls(fake: Any, endpoint: str) -> list[dict[str, Any]]:
    return [c for c in await control(fake, "GET", "/_control/calls") if c["endpoint"] == endpoint]


# --- documented answers, served verbatim ------------------------------------------------------


async def test_sample_balance(fake, client):
    await fault(fake, endpoint=BALANCE, mode="body", json=SAMPLE_BALANCE)
    balance = await client.query_balance("tel: 8801812345678")
    assert (balance.chargeable_balance, balance.account_type, balance.account_status) == (
        Decimal("100"), "PREPAID", "0")


async def test_sample_payment_instruments(fake, client):
    await fault(fake, endpoint=LIST_PI, mode="body", json=SAMPLE_PI)
    [pi] = await client.payment_instruments(ROBI)
    assert (pi.name, pi.type) == ("Mobile Account", "sync")


async def test_sample_debit(fake, client):
    await fault(fake, endpoint=DEBIT, mode="body", json=SAMPLE_DEBIT)
    result = await client.direct_debit("tel: 8801812345678", Decimal("5"), "25609")
    assert (result.external_trx_id, result.internal_trx_id, result.timestamp, result.reference_id) == (
        "25609", "913080108430074", "2013-08-01T08:43:34.344+05:30", None)


@pytest.mark.parametrize("endpoint", [DEBIT, BALANCE])
@pytest.mark.parametrize("code", list(APPENDIX_A))
async def test_appendix_a_codes(fake, client, endpoint, code):
    error, retryable = APPENDIX_A[code]
    await fault(fake, endpoint=endpoint, mode="body", json={"statusCode": code, "statusDetail": f"detail of {code}"})
    with pytest.raises(error) as info:
        if endpoint == DEBIT:
            await client.direct_debit(ROBI, Decimal("5"), "trx-appendix")
        else:
            await client.query_balance(ROBI)
    assert info.value.code == code and info.value.detail == f"detail of {code}"
    assert info.value.retryable is retryable
    assert isinstance(info.value, UpstreamAuthError if code in ("E1313", "E1303")
                      else UpstreamUnavailable if error is CaasTemporaryError else UpstreamRejected)
    assert len(await calls(fake, endpoint)) == 1  # an error code is never retried inside the client


async def test_debit_answer_for_another_transaction_is_malformed(fake, client):
    await fault(fake, endpoint=DEBIT, mode="body", json=SAMPLE_DEBIT)
    with pytest.raises(UpstreamMalformed):
        await client.direct_debit(ROBI, Decimal("5"), "not-25609")


# --- the stateful fake ----------------------------------------------------------------------


async def test_debit_wire_fields_and_balance(fake, client):
    assert (await client.query_balance(MASKED)).chargeable_balance == Decimal("42.75")
    result = await client.direct_debit(MASKED, Decimal("12.5"), "ledger-0001")
    assert result.internal_trx_id and result.reference_id and len(result.reference_id) == 8
    assert result.timestamp and result.timestamp.endswith("+06:00")
    assert (result.external_trx_id, result.amount, result.subscriber_id) == ("ledger-0001", Decimal("12.50"), MASKED)

    [call] = await calls(fake, DEBIT)
    assert call["json"] == {"applicationId": APP_ID, "password": PASSWORD, "externalTrxId": "ledger-0001",
                            "amount": "12.50", "currency": "BDT", "subscriberId": MASKED,
                            "paymentInstrumentName": "Mobile Account"}
    assert (await client.query_balance(MASKED)).chargeable_balance == Decimal("30.25")
    [balance_call, *_] = await calls(fake, BALANCE)
    assert balance_call["json"]["subscriberId"] == MASKED  # byte-identical, never re-encoded


async def test_repeated_external_trx_id_is_idempotent(fake, client):
    first = await client.direct_debit(ROBI, Decimal("10"), "ledger-0002")
    again = await client.direct_debit(ROBI, Decimal("10"), "ledger-0002")
    assert again == first
    assert (await client.query_balance(ROBI)).chargeable_balance == Decimal("90.00")
    assert [c["json"]["externalTrxId"] for c in await calls(fake, DEBIT)] == ["ledger-0002", "ledger-0002"]
    assert len(await control(fake, "GET", "/_control/caas/debits")) == 1


async def test_same_external_trx_id_other_amount_is_duplicate(fake, client):
    await client.direct_debit(ROBI, Decimal("10"), "ledger-0003")
    with pytest.raises(CaasDuplicate) as info:
        await client.direct_debit(ROBI, Decimal("11"), "ledger-0003")
    assert info.value.retryable is False
    assert (await client.query_balance(ROBI)).chargeable_balance == Decimal("90.00")


async def test_insufficient_balance_is_declined(fake, client):
    await control(fake, "POST", "/_control/caas/balance", {"subscriberId": ROBI, "balance": "4.99"})
    with pytest.raises(CaasChargeDeclined) as info:
        await client.direct_debit(ROBI, Decimal("5"), "ledger-0004")
    assert info.value.code == "E1308" and info.value.retryable is False
    assert (await client.query_balance(ROBI)).chargeable_balance == Decimal("4.99")
    # declined debits are not remembered: the same id succeeds once the subscriber tops up
    await control(fake, "POST", "/_control/caas/balance", {"subscriberId": ROBI, "balance": "5"})
    await client.direct_debit(ROBI, Decimal("5"), "ledger-0004")
    assert (await client.query_balance(ROBI)).chargeable_balance == Decimal("0.00")


async def test_seeded_subscribers(client):
    postpaid = await client.query_balance("tel: 8801612345678")  # the seed's spacing is accepted
    assert (postpaid.chargeable_balance, postpaid.account_type) == (Decimal("250.00"), "POSTPAID")
    assert (await client.query_balance("tel:8801855500000")).chargeable_balance == Decimal("0")


@pytest.mark.parametrize("kind,names", [("all", ["Mobile Account"]), ("sync", ["Mobile Account"]), ("async", [])])
async def test_payment_instruments(fake, client, kind, names):
    assert [pi.name for pi in await client.payment_instruments(ROBI, type=kind)] == names
    [call] = await calls(fake, LIST_PI)
    assert call["json"]["type"] == kind


@pytest.mark.parametrize("app_id,password", [(APP_ID, "wrong"), ("APP_999999", PASSWORD)])
async def test_wrong_credentials(fake, app_id, password):
    async with CaasClient(str(fake.make_url("/")), app_id, password) as bad:
        with pytest.raises(CaasAuthError) as info:
            await bad.direct_debit(ROBI, Decimal("1"), "ledger-0005")
    assert info.value.code == "E1313" and info.value.retryable is False
    assert await control(fake, "GET", "/_control/caas/debits") == []


async def test_unsupported_payment_instrument_is_invalid_request(fake):
    async with CaasClient(str(fake.make_url("/")), APP_ID, PASSWORD, payment_instrument="Credit Card") as c:
        with pytest.raises(CaasInvalidRequest):
            await c.query_balance(ROBI)


# --- transport failures ---------------------------------------------------------------------


@pytest.mark.parametrize("status,error,retryable", [
    (401, UpstreamAuthError, False), (404, UpstreamRejected, False), (503, UpstreamUnavailable, True)])
async def test_http_status(fake, client, status, error, retryable):
    await fault(fake, endpoint="*", mode="status", status=status)
    with pytest.raises(error) as info:
        await client.direct_debit(ROBI, Decimal("5"), "ledger-0006")
    assert info.value.http_status == status and info.value.retryable is retryable
    assert len(await calls(fake, DEBIT)) == 1  # money call: never retried inside the client


async def test_reads_retry_once_on_5xx(fake, client):
    await fault(fake, endpoint=BALANCE, mode="status", status=502, times=1)
    assert (await client.query_balance(ROBI)).chargeable_balance == Decimal("100.00")
    assert len(await calls(fake, BALANCE)) == 2


@pytest.mark.parametrize("body", [None, {"statusDetail": "no code"}, {"statusCode": "S1000"}])
async def test_malformed(fake, client, body):
    if body is None:
        await fault(fake, endpoint=BALANCE, mode="malformed")
    else:
        await fault(fake, endpoint=BALANCE, mode="body", json=body)
    with pytest.raises(UpstreamMalformed):
        await client.query_balance(ROBI)


async def test_timeout_then_retry_with_same_id_charges_once(fake, client):
    await fault(fake, endpoint=DEBIT, mode="delay", seconds=0.8, times=1)
    with pytest.raises(UpstreamTimeout) as info:
        await client.direct_debit(ROBI, Decimal("20"), "ledger-0007")
    assert info.value.retryable is True
    for _ in range(50):  # the gateway completes the debit we stopped waiting for
        if await control(fake, "GET", "/_control/caas/debits"):
            break
        await asyncio.sleep(0.05)
    retried = await client.direct_debit(ROBI, Decimal("20"), "ledger-0007")
    assert retried.external_trx_id == "ledger-0007"
    assert len(await control(fake, "GET", "/_control/caas/debits")) == 1
    assert (await client.query_balance(ROBI)).chargeable_balance == Decimal("80.00")


async def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with CaasClient(f"http://127.0.0.1:{port}", APP_ID, PASSWORD) as c:
        with pytest.raises(UpstreamConnectError) as info:
            await c.direct_debit(ROBI, Decimal("5"), "ledger-0008")
    assert info.value.retryable is True


async def test_password_never_logged(fake, client, caplog):
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        await client.direct_debit(ROBI, Decimal("5"), "ledger-0009")
        await client.query_balance(ROBI)
    assert events and PASSWORD not in repr(events)
    assert PASSWORD not in caplog.text


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize("amount,wire", [
    (Decimal("5"), "5"), (Decimal("5.00"), "5"), (Decimal("5.5"), "5.50"), (Decimal("0.01"), "0.01"),
    (12, "12"), ("7.25", "7.25"), (Decimal("1E+1"), "10")])
def test_format_amount(amount, wire):
    assert format_amount(amount) == wire


@pytest.mark.parametrize("amount,exc", [
    (Decimal("5.555"), ValueError), (Decimal("0"), ValueError), (Decimal("-1"), ValueError),
    (Decimal("NaN"), ValueError), ("abc", ValueError), (5.5, TypeError)])
def test_format_amount_rejects(amount, exc):
    with pytest.raises(exc):
        format_amount(amount)


async def test_bad_debit_inputs_never_reach_the_wire(fake, client):
    with pytest.raises(ValueError):
        await client.direct_debit(ROBI, Decimal("1.001"), "ledger-0010")
    with pytest.raises(ValueError):
        await client.direct_debit(ROBI, Decimal("1"), "x" * 33)
    assert await calls(fake, DEBIT) == []


async def test_error_code_on_a_4xx_is_mapped_by_code(aiohttp_server):
    # Be liberal: a gateway that sends its E-code with a 4xx status still gets the typed error.
    from aiohttp import web

    async def invalid(request: web.Request) -> web.Response:
        return web.json_response({"statusCode": "E1312", "statusDetail": "Request is Invalid."}, status=400)

    app = web.Application()
    app.router.add_post(BALANCE, invalid)
    server = await aiohttp_server(app)
    async with CaasClient(str(server.make_url("/")), APP_ID, PASSWORD) as c:
        with pytest.raises(CaasInvalidRequest) as info:
            await c.query_balance(ROBI)
    assert info.value.http_status == 400 and info.value.retryable is False
