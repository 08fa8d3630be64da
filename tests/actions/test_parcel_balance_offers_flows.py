"""The parcel, balance and offers flows end to end: a phone dials through the sandbox BDApps
gateway, the app's real callback route runs the flow, and its actions call the eCourier, eCare
and CAAS fakes over loopback HTTP."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from server.actions import build_registry
from server.integrations.caas import CaasClient
from server.integrations.ecare import ECareClient
from server.integrations.ecourier import ECourierClient
from server.sandbox.caas import create_caas_fake
from server.sandbox.ecare import ECARE_PATH, create_ecare_fake
from server.sandbox.ecourier import create_ecourier_fake
from server.upstreams import Upstreams
from tests.conftest import APP_ID, PASSWORD, Stack, start_stack

PARCEL, BALANCE, OFFERS = "*214#", "*215#", "*216#"
ACTION_TIMEOUT = 3.0  # the upstream actions' `timeout:` in the flows
BUSY = {"en": "The service is busy. Please try again later.",
        "bn": "সেবাটি এখন ব্যস্ত। পরে আবার চেষ্টা করুন।"}
MASKED = "tel:B%3C4pbgsmXQ7Lk2iYp0aR1dZ"


@dataclass
class Services:
    stack: Stack
    urls: dict[str, str]  # fake name -> root URL

    async def dial(self, code: str, address: str = "tel:8801812345678") -> dict[str, Any]:
        return fits(await self.stack.dial(code, address))

    async def reply(self, screen: dict[str, Any], text: str) -> dict[str, Any]:
        return fits(await self.stack.reply(screen, text))

    async def control(self, fake: str, path: str, body: Any = None, method: str = "POST") -> Any:
        async with self.stack.http.request(method, self.urls[fake] + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def fault(self, fake: str, **fault: Any) -> None:
        await self.control(fake, "/_control/faults", fault)

    async def calls(self, fake: str, endpoint: str) -> list[dict[str, Any]]:
        return [c for c in await self.control(fake, "/_control/calls", method="GET") if c["endpoint"] == endpoint]


def fits(screen: dict[str, Any]) -> dict[str, Any]:
    """Every screen within its encoding's budget."""
    budget = 160 if screen["encoding"] == "440" else 80
    assert len(screen["message"]) <= budget, (len(screen["message"]), screen["message"])
    return screen


def designed(screen: dict[str, Any]) -> dict[str, Any]:
    """A screen the flow lays out itself: it fits one page, so any "98. More" in it is the
    flow's own list paging (`more:`), not the engine splitting an overlong screen."""
    return fits(screen)


def lines(screen: dict[str, Any]) -> list[str]:
    return screen["message"].split("\n")


@pytest.fixture
async def services(aiohttp_server) -> AsyncIterator[Callable[..., Awaitable[Services]]]:
    made: list[tuple[Stack, Upstreams]] = []

    async def make(language: str = "bn", **settings: Any) -> Services:
        fakes = {"ecourier": create_ecourier_fake("k", "s", "u"), "ecare": create_ecare_fake("id", "pass"),
                 "caas": create_caas_fake(APP_ID, PASSWORD)}
        urls = {}
        for name, app in fakes.items():
            server = await aiohttp_server(app)
            urls[name] = str(server.make_url("")).rstrip("/")
        upstreams = Upstreams(ECourierClient(urls["ecourier"], "k", "s", "u"),
                              ECareClient(urls["ecare"] + ECARE_PATH, "id", "pass"),
                              CaasClient(urls["caas"], APP_ID, PASSWORD))
        stack = await start_stack(aiohttp_server, registry=build_registry(upstreams),
                                  default_language=language, **settings)
        made.append((stack, upstreams))
        return Services(stack, urls)

    yield make
    for stack, upstreams in made:
        await stack.http.close()
        await upstreams.aclose()


# --- parcel tracking ------------------------------------------------------------------------

async def test_track_by_ecr_id_shows_status_time_and_pages_history_en(services) -> None:
    s = await services("en")
    ask = await s.dial(PARCEL)
    assert ask["ussdOperation"] == "mt-cont" and "eCourier ID" in ask["message"]
    status = designed(await s.reply(ask, "ecr1022001175478"))
    assert lines(status) == ["Parcel ECR1022001175478", "Status: Delivered", "Updated: 20/01/2017 12:04",
                             "1. History", "2. Track another parcel"]
    assert status["ussdOperation"] == "mt-cont" and status["encoding"] == "440"

    page1 = designed(await s.reply(status, "1"))
    assert lines(page1) == ["History 1/3", "20/01 12:04 Delivered", "20/01 12:03 On the way to Delivery",
                            "20/01 12:03 In Destination Branch", "98. More"]
    page2 = designed(await s.reply(page1, "98"))
    assert lines(page2) == ["History 2/3", "20/01 12:03 In Transit", "20/01 12:03 In Source Branch",
                            "20/01 12:01 Picked Up", "98. More", "0. Back"]
    assert lines(designed(await s.reply(page2, "0")))[0] == "History 1/3"
    page3 = designed(await s.reply(await s.reply(page2, "98"), "98"))
    assert lines(page3) == ["History 3/3", "20/01 12:00 Initiated", "1. Parcel status", "0. Back"]
    again = designed(await s.reply(page3, "98"))  # 98 on the last page stays there, no error
    assert lines(again) == lines(page3)
    back = await s.reply(again, "1")
    assert lines(back)[:2] == ["Parcel ECR1022001175478", "Status: Delivered"]


async def test_track_in_bengali_localises_status_time_and_pages_by_two(services) -> None:
    s = await services("bn")
    status = designed(await s.reply(await s.dial(PARCEL), "ECR1022001175478"))
    assert lines(status) == ["ECR1022001175478", "ডেলিভারি হয়েছে", "২০/০১/২০১৭ ১২:০৪", "1. ইতিহাস",
                             "2. অন্য পার্সেল"]
    assert status["encoding"] == "16"
    screen = designed(await s.reply(status, "১"))  # Bengali digits work as keys
    seen = []
    for page in range(1, 5):
        assert lines(screen)[0] == f"ইতিহাস {'১২৩৪'[page - 1]}/৪"
        seen += lines(screen)[1:3] if page < 4 else lines(screen)[1:2]
        if page < 4:
            assert "98. আরও" in lines(screen)
            screen = designed(await s.reply(screen, "98"))
    assert seen[0] == "২০/০১ ১২:০৪ ডেলিভারি হয়েছে" and seen[-1] == "২০/০১ ১২:০০ অর্ডার হয়েছে"
    assert len(seen) == 7
    assert lines(screen)[-2:] == ["1. অবস্থা", "0. পেছনে"]


async def test_order_id_with_two_parcels_lists_them_and_picks_one(services) -> None:
    s = await services("en")
    listed = designed(await s.reply(await s.dial(PARCEL), "ALP-1001"))
    assert lines(listed) == ["2 parcels have order ID ALP-1001. Choose one:",
                             "1. ECR2311005123402 (24/11, Initiated)",
                             "2. ECR2311005123401 (23/11, On the way to Delivery)"]
    assert listed["ussdOperation"] == "mt-cont"
    wrong = designed(await s.reply(listed, "3"))  # a digit, but not on the list
    assert lines(wrong)[0] == "Choose a number from the list:"
    assert len(lines(wrong)) == 3
    picked = designed(await s.reply(wrong, "2"))
    assert lines(picked)[:3] == ["Parcel ECR2311005123401", "Status: On the way to Delivery",
                                 "Updated: 23/11/2024 10:15"]
    history = designed(await s.reply(picked, "1"))
    assert lines(history)[:2] == ["History 1/2", "23/11 10:15 On the way to Delivery"]


async def test_order_id_matches_in_bengali(services) -> None:
    s = await services("bn")
    listed = designed(await s.reply(await s.dial(PARCEL), "ALP-1001"))
    assert lines(listed) == ["২টি পার্সেল মিলেছে:", "1. ECR2311005123402 (২৪/১১)", "2. ECR2311005123401 (২৩/১১)"]
    picked = designed(await s.reply(listed, "১"))
    assert lines(picked)[:3] == ["ECR2311005123402", "অর্ডার হয়েছে", "২৪/১১/২০২৪ ০৯:১২"]


async def test_unknown_parcel_says_not_found_and_offers_another_try(services) -> None:
    s = await services("en")
    screen = designed(await s.reply(await s.dial(PARCEL), "ECR1022001175479"))
    assert lines(screen) == ["No parcel found for ECR1022001175479.", "1. Try another ID"]
    assert screen["ussdOperation"] == "mt-cont"
    retry = await s.reply(screen, "1")
    assert "eCourier ID" in retry["message"]
    found = await s.reply(retry, "ALP-2002")  # one match: straight to its status
    assert lines(found)[:2] == ["Parcel ECR2311005123403", "Status: In Transit"]


async def test_not_found_in_bengali(services) -> None:
    s = await services("bn")
    screen = designed(await s.reply(await s.dial(PARCEL), "ALP-9999"))
    assert lines(screen) == ["ALP-9999 আইডিতে কোনো পার্সেল পাওয়া যায়নি।", "1. অন্য আইডি দিন"]


@pytest.mark.parametrize("typed", ["ECR12", "ECR1022001175478123456789", "a", "ALP 1001!"])
async def test_invalid_id_is_refused_without_asking_ecourier(services, typed: str) -> None:
    s = await services("en")
    screen = designed(await s.reply(await s.dial(PARCEL), typed))
    assert lines(screen) == [f"{typed} is not a valid ID. An eCourier ID looks like ECR1022001175478.",
                             "1. Try again"]
    assert await s.calls("ecourier", "/track") == []


async def test_invalid_id_in_bengali(services) -> None:
    s = await services("bn")
    screen = designed(await s.reply(await s.dial(PARCEL), "ECR12"))
    assert lines(screen)[0] == "ECR12 আইডি ভুল (যেমন ECR1022001175478)"
    assert lines(screen)[1] == "1. আবার চেষ্টা করুন"


# --- balance --------------------------------------------------------------------------------

async def test_balance_in_bengali(services) -> None:
    s = await services("bn")
    screen = await s.dial(BALANCE)
    assert screen["message"] == "আপনার ব্যালেন্স ১০০.০০৳।"
    assert screen["ussdOperation"] == "mt-fin" and screen["encoding"] == "16"


async def test_balance_in_english_with_lakh_grouping(services) -> None:
    s = await services("en")
    await s.control("caas", "/_control/caas/balance", {"subscriberId": "tel:8801812345678", "balance": "125000.5"})
    screen = await s.dial(BALANCE)
    assert screen["message"] == "Your balance is Tk 1,25,000.50."
    assert screen["ussdOperation"] == "mt-fin" and screen["encoding"] == "440"


async def test_balance_asks_caas_for_the_masked_address_byte_for_byte(services) -> None:
    s = await services("bn")
    screen = await s.dial(BALANCE, MASKED)
    assert screen["message"] == "আপনার ব্যালেন্স ৪২.৭৫৳।"
    [call] = await s.calls("caas", "/caas/balance/query")
    assert call["json"]["subscriberId"] == MASKED


async def test_balance_refused_for_good_says_so(services) -> None:
    s = await services("en")
    await s.fault("caas", endpoint="/caas/balance/query", mode="body",
                  json={"statusCode": "E1325", "statusDetail": "Format of the address is invalid."})
    screen = await s.dial(BALANCE)
    assert screen["message"] == "Sorry, the balance of this number cannot be checked here."
    assert screen["ussdOperation"] == "mt-fin"


# --- offer packs ----------------------------------------------------------------------------

async def test_offer_packs_page_by_four_and_show_details_en(services) -> None:
    s = await services("en")
    page1 = designed(await s.dial(OFFERS))
    assert lines(page1) == ["Offer packs 1/4", "1. GP 2GB Internet Tk 98", "2. GP 300 Minutes Tk 348",
                            "3. GP 12GB Skitto Pack Tk 299", "98. More"]
    page2 = designed(await s.reply(page1, "98"))
    assert lines(page2) == ["Offer packs 2/4", "1. BL 1.5GB Internet Tk 57", "2. BL 10GB + 200 Min Tk 498",
                            "3. Robi 1GB Internet Tk 48", "98. More", "0. Back"]
    page3 = designed(await s.reply(await s.reply(page2, "98"), "98"))
    assert lines(page3) == ["Offer packs 4/4", "1. Teletalk 10GB Internet Tk 198", "0. Back"]
    wrong = designed(await s.reply(page3, "2"))
    assert lines(wrong)[0] == "Choose a number from the list:"
    detail = designed(await s.reply(wrong, "1"))
    assert lines(detail) == ["10GB Internet", "Teletalk Prepaid, Tk 198.00", "Valid 30 days",
                             "10GB internet for 30 days", "1. Back to the list"]
    back = designed(await s.reply(detail, "1"))
    assert lines(back)[0] == "Offer packs 4/4"
    earlier = designed(await s.reply(await s.reply(back, "0"), "0"))
    skitto = designed(await s.reply(await s.reply(earlier, "0"), "3"))
    assert lines(skitto)[:2] == ["12GB Skitto Pack", "Grameenphone Skitto, Tk 299.00"]


async def test_offer_packs_in_bengali_page_by_two(services) -> None:
    s = await services("bn")
    page = designed(await s.dial(OFFERS))
    assert lines(page) == ["অফার ১/৫", "1. GP 2GB Internet ৯৮৳", "2. GP 300 Minutes ৩৪৮৳", "98. আরও"]
    details = []
    for number in range(1, 6):
        assert lines(page)[0] == f"অফার {'১২৩৪৫'[number - 1]}/৫"
        for key in ("1", "2"):  # every pack's details fit one Bengali screen
            detail = designed(await s.reply(page, key))
            details.append(lines(detail))
            page = designed(await s.reply(detail, "1"))
        if number < 5:
            page = designed(await s.reply(page, "98"))
    assert lines(page)[-2:] == ["2. Teletalk 10GB Internet ১৯৮৳", "0. পেছনে"]
    assert details[8] == ["100 minutes to any local number", "প্রিপেইড, ৮৯৳, ৭ দিন", "1. তালিকা"]
    assert details[4] == ["10GB internet and 200 minutes (Amar Offer)", "পাওয়ার লোড, ৪৯৮৳, ৩০ দিন", "1. তালিকা"]


async def test_no_offer_packs_today(services) -> None:
    s = await services("en")
    await s.fault("ecare", endpoint="OFFERPACK", mode="body", json={"STATUS": "OK", "OFFER_LIST": []})
    screen = await s.dial(OFFERS)
    assert screen["message"] == "No offer packs are on sale right now. Please check again later."
    assert screen["ussdOperation"] == "mt-fin"


# --- upstream faults: the busy screen, in time -------------------------------------------------

FAULTY = [  # flow code, fake, fault endpoint, what to type after dialling (None: the dial runs it)
    pytest.param(PARCEL, "ecourier", "/track", "ECR1022001175478", id="ecourier"),
    pytest.param(BALANCE, "caas", "/caas/balance/query", None, id="caas"),
    pytest.param(OFFERS, "ecare", "OFFERPACK", None, id="ecare"),
]


async def _hop(s: Services, code: str, typed: str | None) -> tuple[dict[str, Any], float]:
    if typed is None:
        started = time.monotonic()
        screen = await s.dial(code)
    else:
        ask = await s.dial(code)
        started = time.monotonic()
        screen = await s.reply(ask, typed)
    return screen, time.monotonic() - started


@pytest.mark.parametrize("code,fake,endpoint,typed", FAULTY)
async def test_slow_upstream_gets_the_busy_screen_within_the_budget(services, code, fake, endpoint, typed) -> None:
    s = await services("bn")
    await s.fault(fake, endpoint=endpoint, mode="delay", seconds=ACTION_TIMEOUT + 1.5, times=2)
    screen, elapsed = await _hop(s, code, typed)
    assert screen["message"] == BUSY["bn"]
    assert screen["ussdOperation"] == "mt-fin" and screen["encoding"] == "16"
    assert elapsed < ACTION_TIMEOUT + 1, elapsed


@pytest.mark.parametrize("code,fake,endpoint,typed", FAULTY)
@pytest.mark.parametrize("fault", [{"mode": "status", "status": 503}, {"mode": "malformed"}], ids=["5xx", "malformed"])
async def test_failing_upstream_gets_the_busy_screen(services, code, fake, endpoint, typed, fault) -> None:
    s = await services("en")
    await s.fault(fake, endpoint=endpoint, **fault)
    screen, elapsed = await _hop(s, code, typed)
    assert screen["message"] == BUSY["en"]
    assert screen["ussdOperation"] == "mt-fin"
    assert elapsed < ACTION_TIMEOUT + 1
    if fault["mode"] == "status":
        assert len(await s.calls(fake, endpoint)) == 2  # a read is retried once on a 5xx, in time


async def test_a_retry_after_a_fast_failure_still_answers(services) -> None:
    s = await services("en")
    await s.fault("ecourier", endpoint="/track", mode="status", status=502, times=1)
    screen = await s.reply(await s.dial(PARCEL), "ECR1022001175478")
    assert lines(screen)[1] == "Status: Delivered"


async def test_flows_load_with_every_upstream_action_registered(services) -> None:
    s = await services("en")
    engine = s.stack.service.engine
    assert {"parcel", "balance", "offers"} <= set(engine.flows)
    names = set(engine.actions.names())
    assert {"parcel.track", "parcel.pick", "parcel.history_page", "balance.query", "offers.list",
            "offers.page", "offers.pick"} <= names


async def test_gsm7_only_deployment_shows_a_bengali_subscriber_the_english_screen(services) -> None:
    # Times are stored as neutral ASCII in the session, so the English fallback stays readable.
    s = await services("bn", ussd_unicode=False)
    status = designed(await s.reply(await s.dial(PARCEL), "ECR1022001175478"))
    assert status["encoding"] == "440"
    assert lines(status)[:3] == ["Parcel ECR1022001175478", "Status: Delivered", "Updated: 20/01/2017 12:04"]
