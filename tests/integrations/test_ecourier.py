"""ECourierClient against the eCourier contract fake, over real HTTP on loopback.

The fake is mounted under /api like the real service, so base-URL joining is exercised too.
Documented bodies from seed 000 are served verbatim through the fake's "body" fault.
"""
from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any, Awaitable, Callable

import httpx
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from server.integrations.base import (
    Timeouts, UpstreamAuthError, UpstreamConnectError, UpstreamError, UpstreamMalformed,
    UpstreamRejected, UpstreamTimeout, UpstreamUnavailable, default_ssl_context,
)
from server.integrations.ecourier import (
    ECourierBusy, ECourierClient, ECourierDuplicateOrder, ECourierInsufficientBalance,
    ECourierInvalidAmount, ECourierInvalidId, ECourierInvalidNumber, ECourierInvalidPackage,
    ECourierInvalidRequest, ECourierNotCancelled, ECourierNotEnabled, ECourierNotFound,
    ECourierSmsNotSent, FraudStatus, NamedValue, OrderAnswer, OrderRequest, Package, SmsResult,
    TopUp, TrackResult, normalize_mobile,
)
from server.sandbox.ecourier import DOC_SAMPLE_PARCEL, ECOURIER_FAKE_KEY, create_ecourier_fake

KEY, SECRET, USER = "test-key-9f3", "test-secret-77ab", "U-4242"
LONG_ECR = "ECR1022001175478"


@pytest.fixture
def fake_app() -> web.Application:
    return create_ecourier_fake(KEY, SECRET, USER)


@pytest.fixture
async def fake(aiohttp_server: Any, fake_app: web.Application) -> Any:
    root = web.Application()
    root.add_subapp("/api", fake_app)
    return await aiohttp_server(root)


def base_url(fake: Any) -> str:
    return str(fake.make_url("/api"))


@pytest.fixture
async def client(fake: Any) -> Any:
    c = ECourierClient(base_url(fake), KEY, SECRET, USER)
    yield c
    await c.aclose()


async def inject(fake: Any, **fault: Any) -> None:
    # The product's shared TLS context: a default httpx client loads the CA bundle (~25 ms of CPU) each time.
    async with httpx.AsyncClient(verify=default_ssl_context()) as h:
        (await h.post(base_url(fake) + "/_control/faults", json=fault)).raise_for_status()


async def calls(fake: Any, endpoint: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(verify=default_ssl_context()) as h:
        return [c for c in (await h.get(base_url(fake) + "/_control/calls")).json() if c["endpoint"] == endpoint]


def order(**overrides: Any) -> OrderRequest:
    fields: dict[str, Any] = dict(
        pick_district="Dhaka", pick_thana="Badda", pick_union="1212",
        pick_address="House no 7, Road 5, middle badda, dhaka", pick_mobile="01738457162", pick_hub="3",
        ep_id="32132212", recipient_name=" Mahbub ", recipient_mobile="+880 1711-223399",
        recipient_city="Barisal", recipient_area="A K Khan", recipient_thana="Babuganj",
        recipient_union="8216", recipient_address="REciver address detail", package_code="#1755",
        product_price="1,200", payment_method="cod", order_code="AS321", number_of_items=2,
        actual_product_price=1240)
    fields.update(overrides)
    return OrderRequest(**fields)


# Every endpoint, called with valid arguments.
CALLS: dict[str, Callable[[ECourierClient], Awaitable[Any]]] = {
    "/order-place-reseller": lambda c: c.place_order(order()),
    "/track": lambda c: c.track(LONG_ECR),
    "/packages": lambda c: c.packages(),
    "/cancel-order": lambda c: c.cancel_order("ECR2311005123402", "Customer does not like"),
    "/fraud-status-check": lambda c: c.fraud_status("01711000001"),
    "/city-list": lambda c: c.city_list(),
    "/thana-list": lambda c: c.thana_list("Barishal"),
    "/area-list": lambda c: c.area_list("Barishal", "Babuganj", "8210"),
    "/postcode-list": lambda c: c.postcode_list("Barishal", "Babuganj"),
    "/branch-list": lambda c: c.branch_list(),
    "/bs-sms": lambda c: c.booster_sms(["01738457162", "01834954690"], "hello js"),
    "/bs-top": lambda c: c.booster_top_up("01738457162", 50),
    "/bs-top-status": lambda c: c.booster_top_up_status("10_1590903041_38811"),
    "/bs-top-otp": lambda c: c.otp_sms("01738457162", "Your code is 4711"),
}
WRITES = {"/order-place-reseller", "/cancel-order", "/bs-sms", "/bs-top", "/bs-top-otp"}

UNAUTHORIZED = {"errors": ["Unauthorized Access"], "response_code": 401}
TRACK_FOUND = {"response_code": 200, "message": "Success", "query_data": [DOC_SAMPLE_PARCEL]}
PACKAGE = {"package_name": "SAMEDAY_Inside_120tk", "package_code": "#2505", "shipping_charge": "120",
           "weight": "Up To 500gm", "delivery_time": "Same Day(8Hr)", "coverage_id": "1", "coverage": "Inside Dhaka"}
POSTCODES = {"success": True, "message": [{"name": "8210(Babuganj)", "value": "8210"},
                                          {"name": "8217(Babuganj Bondor)", "value": "8217"}]}
TOPUP_OK = {"success": True, "response_code": 200, "transcation_id": "2388_1548834510_74832",
            "message": "Request Successfully Accepted. Your transaction ID is 2388_1548834510_74832"}
FRAUD_WARNING = {"success": True, "response_code": 200, "customer_status": "Warning!", "message": ["Reason of fraud"]}
BRANCHES = {"success": True, "message": [{"name": "Andarkilla Hub", "value": 57}]}
SMS_CODES = [  # bs-sms and bs-top-otp document the same answers
    ({"success": True, "response_code": 200, "message": "All SMS sent", "wrong": []}, SmsResult, None),
    ({"success": True, "response_code": 206, "message": "Few SMS not sent", "wrong": ["880183495469"]},
     SmsResult, None),
    ({"success": False, "response_code": 204, "message": "SMS not sent.", "wrong": ["880173857162", "880183495469"]},
     ECourierSmsNotSent, False),
    ({"success": False, "response_code": 203, "message": "Insufficient COD Balance"},
     ECourierInsufficientBalance, False),
    ({"success": False, "response_code": 207, "message": "Missing Mandatory data"}, ECourierInvalidRequest, False),
    ({"success": False, "response_code": 207, "message": "Missing required data"}, ECourierInvalidRequest, False),
    ({"success": False, "response_code": 406, "message": "SMS rate not define. Contact eCourier support."},
     ECourierNotEnabled, False),
    ({"success": False, "response_code": 404, "message": "Your masking name missing. Contact eCourier Support"},
     ECourierNotEnabled, False),
    ({"errors": ["Invalid Request", None], "response_code": 400, "success": False}, ECourierInvalidRequest, False),
]

# (endpoint, documented body, expected result type or error class, expected retryable for errors)
DOCUMENTED: list[tuple[str, Any, type, bool | None]] = [
    ("/order-place-reseller", {"errors": [], "response_code": 200, "message": "Order Submitted",
                               "ID": "ECR1030102170392"}, OrderAnswer, None),
    ("/order-place-reseller", UNAUTHORIZED, UpstreamAuthError, False),
    ("/order-place-reseller", {"errors": ["Invalid Request", "recipient_name Parameter either missing or not set "
                                          "correctly. "], "response_code": 400}, ECourierInvalidRequest, False),
    ("/order-place-reseller", {"errors": ["Invalid Package", "The Package code does not exist or assigned to you"],
                               "response_code": 400}, ECourierInvalidPackage, False),
    ("/order-place-reseller", {"errors": ["Invalid Request", "Product price 0 not allow in BOD and COD payment "
                                          "method"], "response_code": 400}, ECourierInvalidRequest, False),
    ("/order-place-reseller", {"errors": ["Invalid Request", "Duplicate product id and mobile supplied"],
                               "response_code": 400}, ECourierDuplicateOrder, False),
    # Not inserted, but a write: the caller decides, never an automatic repeat.
    ("/order-place-reseller", {"errors": ["Unable to insert orders"], "response_code": 500},
     UpstreamUnavailable, False),
    ("/track", {"response_code": 200, "message": "Success", "query_data": "No Data Found"}, ECourierNotFound, False),
    ("/track", TRACK_FOUND, TrackResult, None),
    ("/track", UNAUTHORIZED, UpstreamAuthError, False),
    ("/track", {"errors": ["Invalid Data", "Please Set product id or ecr number or both"], "response_code": 400},
     ECourierInvalidId, False),
    ("/packages", [PACKAGE, PACKAGE], list, None),
    ("/packages", UNAUTHORIZED, UpstreamAuthError, False),
    ("/cancel-order", {"success": "true", "message": "Order canceled"}, OrderAnswer, None),
    ("/cancel-order", {"success": "false", "message": " Order not cancelled"}, ECourierNotCancelled, False),
    ("/cancel-order", {"success": "false", "message": "Invalid Tracking"}, ECourierNotFound, False),
    ("/cancel-order", UNAUTHORIZED, UpstreamAuthError, False),
    ("/fraud-status-check", FRAUD_WARNING, FraudStatus, None),
    ("/fraud-status-check", {"success": True, "response_code": 200, "customer_status": "New Customer for eCourier",
                             "message": ""}, FraudStatus, None),
    ("/fraud-status-check", {"success": True, "response_code": 200, "customer_status": "Verified by eCourier",
                             "message": ""}, FraudStatus, None),
    ("/fraud-status-check", {"success": False, "response_code": 203,
                             "message": "Invalid number. Please provide a valid number."},
     ECourierInvalidNumber, False),
    ("/fraud-status-check", {"success": False, "response_code": 203,
                             "message": "Please contact with eCourier support to enjoy this service"},
     ECourierNotEnabled, False),
    ("/fraud-status-check", {"success": False, "response_code": 203, "message": " Insufficient COD Balance"},
     ECourierInsufficientBalance, False),
    ("/fraud-status-check", UNAUTHORIZED, UpstreamAuthError, False),
    ("/city-list", [{"name": "Dhaka", "value": "Dhaka"}, {"name": "Barishal", "value": "Barishal"}], list, None),
    ("/city-list", UNAUTHORIZED, UpstreamAuthError, False),
    ("/thana-list", {"success": True, "message": [{"name": "Agailjhara", "value": "Agailjhara"},
                                                  {"name": "Babuganj", "value": "Babuganj"}]}, list, None),
    ("/thana-list", UNAUTHORIZED, UpstreamAuthError, False),
    ("/thana-list", {"errors": ["Invalid Request", " Thana not found by your search"], "response_code": 400},
     ECourierNotFound, False),
    ("/thana-list", {"errors": ["Invalid Request", " Please select thana"], "response_code": 400},
     ECourierInvalidRequest, False),
    ("/area-list", POSTCODES, list, None),
    ("/area-list", UNAUTHORIZED, UpstreamAuthError, False),
    ("/area-list", {"errors": ["Invalid Request", "Area not found by your search. "], "response_code": 400},
     ECourierNotFound, False),
    ("/area-list", {"errors": ["Invalid Data", " Please select postcode. "], "response_code": 400},
     ECourierInvalidRequest, False),
    ("/postcode-list", POSTCODES, list, None),
    ("/postcode-list", UNAUTHORIZED, UpstreamAuthError, False),
    ("/postcode-list", {"errors": ["Invalid Data", "Postcode Not found by your search. "], "response_code": 400},
     ECourierNotFound, False),
    ("/postcode-list", {"errors": ["Invalid Data", "Please select city and thana. "], "response_code": 400},
     ECourierInvalidRequest, False),
    ("/branch-list", BRANCHES, list, None),
    ("/branch-list", UNAUTHORIZED, UpstreamAuthError, False),
    *[("/bs-sms", body, kind, retry) for body, kind, retry in SMS_CODES],
    *[("/bs-top-otp", body, kind, retry) for body, kind, retry in SMS_CODES],
    ("/bs-top", TOPUP_OK, TopUp, None),
    ("/bs-top", {"errors": ["Invalid Request", None], "response_code": 400, "success": False},
     ECourierInvalidRequest, False),
    # 401 here is a bad subscriber number, not bad credentials.
    ("/bs-top", {"success": False, "response_code": 401,
                 "message": "Invalid Mobile Number. Please try with the correct mobile number"},
     ECourierInvalidNumber, False),
    ("/bs-top", {"success": False, "response_code": 402, "message": "Insufficient COD Balance"},
     ECourierInsufficientBalance, False),
    # eCourier says nothing happened: even this money call may be repeated later.
    ("/bs-top", {"success": False, "response_code": 403, "message": "Unable to process now. Please try again later "
                 "and contact eCourier support"}, ECourierBusy, True),
    ("/bs-top", {"success": False, "response_code": 404, "message": "Missing required data"},
     ECourierInvalidRequest, False),
    ("/bs-top", {"success": False, "response_code": 405, "message": "Top up amount must be between 50 to 1,000 TK."},
     ECourierInvalidAmount, False),
    ("/bs-top-status", {"success": True, "message": "Successfully recharged"}, TopUp, None),
    ("/bs-top-status", {"errors": ["Invalid Request", None], "response_code": 400, "success": False},
     ECourierInvalidRequest, False),
    ("/bs-top-status", {"success": False, "response_code": 401, "message": "Invalid transaction ID supplied"},
     ECourierNotFound, False),
    ("/bs-top-status", {"success": False, "response_code": 403, "message": "Unable to process now. Please try again "
                        "later and contact eCourier support "}, ECourierBusy, True),
    ("/bs-top-status", {"success": False, "response_code": 404, "message": "Missing required data"},
     ECourierInvalidRequest, False),
]


@pytest.mark.parametrize(("endpoint", "body", "expected", "retryable"), DOCUMENTED,
                         ids=[f"{e}-{i}" for i, (e, *_) in enumerate(DOCUMENTED)])
async def test_documented_responses(fake: Any, client: ECourierClient, endpoint: str, body: Any,
                                    expected: type, retryable: bool | None) -> None:
    await inject(fake, endpoint=endpoint, mode="body", json=body)
    if issubclass(expected, UpstreamError):
        with pytest.raises(expected) as caught:
            await CALLS[endpoint](client)
        assert caught.value.retryable is retryable
        assert caught.value.upstream == "ecourier"
    else:
        assert isinstance(await CALLS[endpoint](client), expected)
    # Reads repeat a retryable failure once at once; rejections and writes are never repeated.
    assert len(await calls(fake, endpoint)) == (2 if retryable and endpoint not in WRITES else 1)


async def test_documented_bodies_parse_into_fields(fake: Any, client: ECourierClient) -> None:
    await inject(fake, endpoint="/bs-sms", mode="body", json=SMS_CODES[1][0])
    sms = await client.booster_sms(["01738457162"], "hi")
    assert sms.partial and sms.wrong == ("880183495469",)
    await inject(fake, endpoint="/bs-top-otp", mode="body", json=SMS_CODES[2][0])
    with pytest.raises(ECourierSmsNotSent) as caught:
        await client.otp_sms("01738457162", "hi")
    assert caught.value.wrong == ("880173857162", "880183495469") and caught.value.code == "204"
    await inject(fake, endpoint="/bs-top", mode="body", json=TOPUP_OK)
    assert (await client.booster_top_up("01738457162", 50)).transaction_id == "2388_1548834510_74832"
    await inject(fake, endpoint="/fraud-status-check", mode="body", json=FRAUD_WARNING)
    assert await client.fraud_status("01738457162") == FraudStatus("Warning!", "warning", ("Reason of fraud",))
    await inject(fake, endpoint="/branch-list", mode="body", json=BRANCHES)
    assert await client.branch_list() == [NamedValue("Andarkilla Hub", "57")]
    await inject(fake, endpoint="/packages", mode="body", json=[PACKAGE])
    assert await client.packages() == [Package("#2505", "SAMEDAY_Inside_120tk", Decimal("120"), "Up To 500gm",
                                               "Same Day(8Hr)", "1", "Inside Dhaka")]


# --- the fake's own data ------------------------------------------------------------------

async def test_track_long_history_delivered(client: ECourierClient) -> None:
    result = await client.track(ecr=LONG_ECR)
    assert not result.ambiguous
    parcel = result.parcels[0]
    assert parcel.tracking_id == LONG_ECR and parcel.delivered
    assert [e.status for e in parcel.history][:2] == ["Delivered", "On the way to Delivery"]
    assert len(parcel.history) == 7 and parcel.history[-1].status == "Initiated"
    assert parcel.status is not None and parcel.status.time_text == "2017-01-20 12:04:55"
    assert parcel.status.at is not None and parcel.status.at.utcoffset().total_seconds() == 6 * 3600
    assert (parcel.product_price, parcel.shipping_price, parcel.cod) == (Decimal(10000), Decimal(60), Decimal(100))
    assert parcel.recipient_name == "Mannan" and parcel.payment_status == "Clear"


async def test_track_product_id_matching_two_parcels(fake: Any, client: ECourierClient) -> None:
    result = await client.track("ALP-1001")
    assert result.ambiguous
    assert {p.tracking_id for p in result.parcels} == {"ECR2311005123401", "ECR2311005123402"}
    assert result.latest.tracking_id == "ECR2311005123402"
    assert (await calls(fake, "/track"))[-1]["json"] == {"product_id": "ALP-1001"}


async def test_track_reference_normalised_and_not_found(fake: Any, client: ECourierClient) -> None:
    parcel = (await client.track(" ecr 2311005123403 ")).latest
    assert parcel.status is not None and parcel.status.status == "In Transit" and not parcel.delivered
    assert (await calls(fake, "/track"))[-1]["json"] == {"ecr": "ECR2311005123403"}
    assert (await client.track("ecr ১০২২০০১১৭৫৪৭৮")).latest.tracking_id == LONG_ECR  # Bengali keypad digits
    with pytest.raises(ECourierNotFound) as caught:
        await client.track("ECR9999999999999")
    assert caught.value.code == "no_data" and not caught.value.retryable


async def test_track_without_reference_is_rejected_before_sending(fake: Any, client: ECourierClient) -> None:
    with pytest.raises(ECourierInvalidId):
        await client.track("  ")
    assert await calls(fake, "/track") == []


async def test_place_order_sends_exact_body_and_headers(fake: Any, client: ECourierClient) -> None:
    placed = await client.place_order(order())
    assert placed.tracking_id.startswith("ECR") and placed.message == "Order Submitted"
    (call,) = await calls(fake, "/order-place-reseller")
    sent = call["json"]
    assert sent["recipient_mobile"] == "01711223399" and sent["recipient_name"] == "Mahbub"
    assert (sent["pick_hub"], sent["ep_id"], sent["product_price"]) == (3, 32132212, 1200)
    assert (sent["number_of_items"], sent["actual_product_price"], sent["payment_method"]) == (2, 1240, "COD")
    assert "ep_name" not in sent  # optional fields left None are not sent
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert (headers["api-key"], headers["api-secret"], headers["user-id"]) == (KEY, SECRET, USER)
    assert headers["content-type"] == "application/json"
    tracked = await client.track(product_id="AS321")
    assert tracked.latest.tracking_id == placed.tracking_id
    with pytest.raises(ECourierDuplicateOrder) as caught:
        await client.place_order(order())
    assert caught.value.http_status == 400 and not caught.value.retryable


async def test_place_order_fake_rejections(client: ECourierClient) -> None:
    with pytest.raises(ECourierInvalidPackage):
        await client.place_order(order(package_code="#0000"))
    with pytest.raises(ECourierInvalidRequest, match="Product price 0"):
        await client.place_order(order(product_price=0, order_code="Z1"))
    with pytest.raises(ECourierInvalidNumber):
        await client.place_order(order(recipient_mobile="12345"))
    with pytest.raises(ValueError):
        await client.place_order(order(payment_method="cheque"))


async def test_cancel_order(fake: Any, client: ECourierClient) -> None:
    assert await client.cancel_order("ecr2311005123402", "x" * 300) == OrderAnswer("ECR2311005123402", "Order canceled")
    assert len((await calls(fake, "/cancel-order"))[-1]["json"]["comment"]) == 255
    assert (await client.track(ecr="ECR2311005123402")).latest.status.status == "Cancelled"  # type: ignore[union-attr]
    with pytest.raises(ECourierNotCancelled):
        await client.cancel_order("ECR2311005123401", "too late")
    with pytest.raises(ECourierNotFound):
        await client.cancel_order("ECR0000000000001", "nope")


async def test_reference_lists(client: ECourierClient) -> None:
    assert NamedValue("Dhaka", "Dhaka") in await client.city_list()
    assert [t.value for t in await client.thana_list("barisal")] == ["Agailjhara", "Babuganj"]
    postcodes = await client.postcode_list("Barishal", "Babuganj")
    assert NamedValue("8210(Babuganj)", "8210") in postcodes
    assert [a.name for a in await client.area_list("Barishal", "Babuganj", 8210)] == ["Babuganj Bazar", "Rahmatpur"]
    assert NamedValue("Dhanmondi Hub", "18488") in await client.branch_list()
    assert [p.code for p in await client.packages()] == ["#2505", "#2443", "#1755"]
    with pytest.raises(ECourierNotFound):
        await client.thana_list("Atlantis")
    with pytest.raises(ECourierNotFound):
        await client.postcode_list("Dhaka", "Nowhere")
    with pytest.raises(ECourierNotFound):
        await client.area_list("Dhaka", "Badda", "9999")


async def test_fraud_status(client: ECourierClient) -> None:
    assert (await client.fraud_status("01711000001")).verdict == "warning"
    assert (await client.fraud_status("+8801711000002")).verdict == "verified"
    assert (await client.fraud_status("০১৭১১০০০০০৩")).verdict == "new"


async def test_booster_services(fake: Any, fake_app: web.Application, client: ECourierClient) -> None:
    assert await client.booster_sms(["01738457162", "01834954690"], "hello") == SmsResult("All SMS sent", ())
    assert (await calls(fake, "/bs-sms"))[-1]["json"] == {
        "number": ["01738457162", "01834954690"], "op_title": "booster", "text_type": "text",
        "op_body": "hello", "service_type": "mask"}
    assert not (await client.otp_sms("01738457162", "1234", masking=False)).partial
    assert (await calls(fake, "/bs-top-otp"))[-1]["json"]["number"] == "01738457162"
    accepted = await client.booster_top_up("01738457162", 100, postpaid=True)
    assert (await calls(fake, "/bs-top"))[-1]["json"] == {"number": "01738457162", "amount": 100, "operator_type": 2}
    status = await client.booster_top_up_status(accepted.transaction_id)
    assert status.recharged and status.message == "Successfully recharged"
    with pytest.raises(ECourierInvalidAmount):
        await client.booster_top_up("01738457162", 20)
    with pytest.raises(ECourierNotFound):
        await client.booster_top_up_status("1_2_3")
    fake_app[ECOURIER_FAKE_KEY].balance = 10
    with pytest.raises(ECourierInsufficientBalance):
        await client.booster_top_up("01738457162", 500)


# --- auth and transport failures ----------------------------------------------------------

@pytest.mark.parametrize("endpoint", sorted(CALLS))
async def test_wrong_credentials_on_every_endpoint(fake: Any, endpoint: str) -> None:
    bad = ECourierClient(base_url(fake), KEY, "wrong-secret", USER)
    try:
        with pytest.raises(UpstreamAuthError) as caught:
            await CALLS[endpoint](bad)
    finally:
        await bad.aclose()
    assert caught.value.http_status == 401 and caught.value.retryable is False
    assert caught.value.body == UNAUTHORIZED


async def test_5xx_read_is_retried_once_then_fails(fake: Any, client: ECourierClient) -> None:
    await inject(fake, endpoint="/packages", mode="status", status=503)
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.packages()
    assert caught.value.retryable and caught.value.code == "503"
    assert len(await calls(fake, "/packages")) == 2


async def test_5xx_read_recovers_on_retry(fake: Any, client: ECourierClient) -> None:
    await inject(fake, endpoint="/track", mode="status", status=502, times=1)
    assert (await client.track(LONG_ECR)).latest.delivered
    assert len(await calls(fake, "/track")) == 2


@pytest.mark.parametrize("endpoint", sorted(WRITES))
async def test_5xx_write_is_not_retried(fake: Any, client: ECourierClient, endpoint: str) -> None:
    await inject(fake, endpoint=endpoint, mode="status", status=500, times=1)
    with pytest.raises(UpstreamUnavailable) as caught:
        await CALLS[endpoint](client)
    assert caught.value.retryable is False
    assert len(await calls(fake, endpoint)) == 1


async def test_malformed_body(fake: Any, client: ECourierClient) -> None:
    await inject(fake, endpoint="/track", mode="malformed")
    with pytest.raises(UpstreamMalformed) as caught:
        await client.track(LONG_ECR)
    assert caught.value.retryable is True and len(await calls(fake, "/track")) == 2
    await inject(fake, endpoint="/bs-top", mode="malformed")
    with pytest.raises(UpstreamMalformed) as caught:
        await client.booster_top_up("01738457162", 50)
    assert caught.value.retryable is False and len(await calls(fake, "/bs-top")) == 1


@pytest.mark.parametrize("body", [{"response_code": 200, "message": "Success", "query_data": [{"status": []}]},
                                  {"response_code": 200, "query_data": {"REFID": "ECR1"}}, ["not", "an object"]])
async def test_unusable_json_is_malformed(fake: Any, client: ECourierClient, body: Any) -> None:
    await inject(fake, endpoint="/track", mode="body", json=body)
    with pytest.raises(UpstreamMalformed):
        await client.track(LONG_ECR)


@pytest.mark.parametrize(("endpoint", "retryable"), [("/track", True), ("/order-place-reseller", False)])
async def test_timeout(fake: Any, endpoint: str, retryable: bool) -> None:
    await inject(fake, endpoint=endpoint, mode="delay", seconds=1.5)
    quick = ECourierClient(base_url(fake), KEY, SECRET, USER, timeouts=Timeouts(read=0.2))
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await CALLS[endpoint](quick)
    finally:
        await quick.aclose()
    assert caught.value.retryable is retryable
    assert len(await calls(fake, endpoint)) == 1  # a timeout is never repeated inside the USSD budget


@pytest.mark.parametrize("endpoint", ["/track", "/bs-top"])
async def test_connection_refused(endpoint: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = ECourierClient(f"http://127.0.0.1:{port}/api", KEY, SECRET, USER)
    try:
        with pytest.raises(UpstreamConnectError) as caught:
            await CALLS[endpoint](dead)
    finally:
        await dead.aclose()
    assert caught.value.retryable is True  # never reached eCourier, so even a write may be repeated


async def test_secrets_never_logged(fake: Any, client: ECourierClient) -> None:
    with capture_logs() as logs:
        await client.packages()
        with pytest.raises(UpstreamRejected):
            await client.track("ECR9999999999999")
    assert logs and all(SECRET not in repr(e) and KEY not in repr(e) for e in logs)
    assert SECRET not in repr(client)


async def test_injected_http_client_gets_headers_and_stays_open(fake: Any) -> None:
    async with httpx.AsyncClient() as shared:
        c = ECourierClient(base_url(fake) + "/", KEY, SECRET, USER, http=shared)
        assert len(await c.city_list()) == 3
        await c.aclose()
        assert not shared.is_closed
    headers = {k.lower(): v for k, v in (await calls(fake, "/city-list"))[-1]["headers"].items()}
    assert headers["api-key"] == KEY and headers["user-id"] == USER


@pytest.mark.parametrize(("raw", "expected"), [
    ("01712345678", "01712345678"), ("+8801712345678", "01712345678"), ("880 1712-345678", "01712345678"),
    ("1712345678", "01712345678"), ("০১৭১২৩৪৫৬৭৮", "01712345678"),
])
def test_normalize_mobile(raw: str, expected: str) -> None:
    assert normalize_mobile(raw) == expected


@pytest.mark.parametrize("raw", ["", "0171234567", "01212345678", "phone", "+44 7700 900123"])
def test_normalize_mobile_rejects(raw: str) -> None:
    with pytest.raises(ECourierInvalidNumber) as caught:
        normalize_mobile(raw)
    assert raw not in str(caught.value) or raw == ""
