"""Outbound SMS behind one interface: BDApps `/sms/send`, AamarSMS and DiniSoft routes, the
routing policy, failover, opt-out, parts, delivery reports and the message log. The harness here
(Env, `env`, `mem_env`) is shared with tests/messaging/test_throttling_and_parking.py and
tests/integrations/test_bdapps_sms_send.py.

Everything runs over real HTTP against the sandbox fakes; storage tests run on both the memory
and the Redis backend (the `store` fixture)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from server.integrations.bdapps import BdappsGateway
from server.integrations.aamarsms import AamarSmsClient
from server.integrations.base import Timeouts
from server.integrations.dinisoft import DiniSoftClient
from server.messaging import (
    AamarSmsRoute, BdappsRoute, DiniSoftRoute, MessageStatus, RoutingPolicy, SmsSender, build_sms_sender,
    parse_routes,
)
from server.sandbox.aamarsms import AAMARSMS_STATE, create_aamarsms_fake
from server.sandbox.bdapps import create_bdapps_fake, sent_sms, sms_error
from server.sandbox.dinisoft import DINISOFT_STATE, create_dinisoft_fake
from server.sandbox.faults import FAULTS_KEY, Fault
from server.store import Profile, Store
from server.store import open_message_log
from server.store.messages import MessageLog, normalize_status
from server.store.messages_memory import MemoryMessageLog
from tests.conftest import APP_ID, PASSWORD, free_port
from tests.conftest import test_settings as make_settings

AAMAR_USER, AAMAR_PASS = "sandbox", "sandbox-pass"
DINI_KEY, DINI_SECRET, DINI_CALLER = "sandbox-key", "sandbox-secret", "8809612345678"

ROBI = "tel:8801812345678"  # a BDApps subscriber as the gateway gives it
MASKED = "tel:B%3C4pbgsmCpYg3FvZq9ZRmBfAIyFw6hEDe0r4SRsP2Dz/QbbN4q9hqXhs1Yl0x6yQGrL0XKF="
GP = "01712345678"  # a plain number on an operator BDApps cannot reach
BENGALI_71 = "আ" * 71


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    bdapps: web.Application
    aamar: web.Application
    dini: web.Application
    urls: dict[str, str]
    http: aiohttp.ClientSession
    store: Store
    log: MessageLog
    clock: FakeClock = field(default_factory=FakeClock)
    closers: list[Any] = field(default_factory=list)

    # -- building ---------------------------------------------------------------------------
    def gateway(self, url: str | None = None, *, timeout: float = 0.5) -> BdappsGateway:
        return BdappsGateway(url or self.urls["bdapps"], APP_ID, PASSWORD, self.http, timeout=timeout)

    def aamar_client(self, url: str | None = None) -> AamarSmsClient:
        client = AamarSmsClient(url or self.urls["aamarsms"], AAMAR_USER, AAMAR_PASS, "Alap",
                                timeouts=Timeouts(connect=0.5, read=0.3))
        self.closers.append(client)
        return client

    def dini_client(self, url: str | None = None) -> DiniSoftClient:
        client = DiniSoftClient(url or self.urls["dinisoft"], DINI_KEY, DINI_SECRET, DINI_CALLER,
                                timeouts=Timeouts(connect=0.5, read=0.3))
        self.closers.append(client)
        return client

    def routes(self, names: tuple[str, ...] = ("bdapps", "aamarsms", "dinisoft"), *, down: tuple[str, ...] = (),
               source_address: str | None = None) -> list[Any]:
        closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
        made = []
        for name in names:
            url = closed if name in down else None
            if name == "bdapps":
                made.append(BdappsRoute(self.gateway(url), source_address=source_address))
            elif name == "aamarsms":
                made.append(AamarSmsRoute(self.aamar_client(url)))
            else:
                made.append(DiniSoftRoute(self.dini_client(url)))
        return made

    def sender(self, names: tuple[str, ...] = ("bdapps", "aamarsms", "dinisoft"), *, down: tuple[str, ...] = (),
               log: MessageLog | None = None, **options: Any) -> SmsSender:
        options.setdefault("rate", 0)
        options.setdefault("rate_limit_backoff", 0.05)
        options.setdefault("clock", self.clock)
        return SmsSender(self.routes(names, down=down), log or self.log, self.store,
                         policy=RoutingPolicy(names), **options)

    # -- observing ----------------------------------------------------------------------------
    def fault(self, app: web.Application, endpoint: str, **kwargs: Any) -> None:
        app[FAULTS_KEY].add(Fault(endpoint=endpoint, **kwargs))

    def calls(self, app: web.Application, endpoint: str) -> list[dict[str, Any]]:
        return app[FAULTS_KEY].calls_to(endpoint)

    @property
    def bdapps_sms(self) -> list[dict[str, Any]]:
        return sent_sms(self.bdapps)

    @property
    def aamar_sms(self) -> list[Any]:
        return list(self.aamar[AAMARSMS_STATE].messages.values())

    @property
    def dini_sms(self) -> list[Any]:
        return list(self.dini[DINISOFT_STATE].messages.values())

    def accepted_everywhere(self) -> int:
        """SMS the three fakes accepted, in total: one message must never count twice."""
        return len(self.bdapps_sms) + len(self.aamar_sms) + len(self.dini_sms)


async def _start_env(aiohttp_server, store: Store, **fake_kwargs: Any) -> Env:
    bdapps = create_bdapps_fake("http://127.0.0.1:9/unused", APP_ID, PASSWORD)
    aamar = create_aamarsms_fake(AAMAR_USER, AAMAR_PASS, **fake_kwargs.pop("aamarsms", {}))
    dini = create_dinisoft_fake(DINI_KEY, DINI_SECRET, **fake_kwargs.pop("dinisoft", {}))
    urls = {}
    for name, app in (("bdapps", bdapps), ("aamarsms", aamar), ("dinisoft", dini)):
        server = await aiohttp_server(app)
        urls[name] = str(server.make_url("")).rstrip("/")
    return Env(bdapps, aamar, dini, urls, aiohttp.ClientSession(), store, open_message_log(store))


@pytest.fixture
async def env(aiohttp_server, store: Store) -> AsyncIterator[Env]:
    e = await _start_env(aiohttp_server, store)
    yield e
    for client in e.closers:
        await client.aclose()
    await e.http.close()


@pytest.fixture
async def mem_env(aiohttp_server) -> AsyncIterator[Env]:
    """For tests that only exercise the wire (no storage semantics)."""
    from server.store import MemoryStore

    e = await _start_env(aiohttp_server, MemoryStore())
    yield e
    for client in e.closers:
        await client.aclose()
    await e.http.close()


# --- each route: success and error answers (table-driven) -------------------------------------

ROUTE_CASES = [
    # route, endpoint, fault, expected (accepted, code, retryable, maybe_sent, failover)
    ("bdapps", "/sms/send", None, (True, "S1000", False, False, False)),
    ("bdapps", "/sms/send", {"mode": "body", "json": sms_error("E1603")}, (False, "E1603", True, False, True)),
    ("bdapps", "/sms/send", {"mode": "body", "json": sms_error("E1602")}, (False, "E1602", True, False, True)),
    ("bdapps", "/sms/send", {"mode": "body", "json": sms_error("E1317")}, (False, "E1317", False, False, False)),
    ("bdapps", "/sms/send", {"mode": "status", "status": 502}, (False, "http_502", True, False, True)),
    ("bdapps", "/sms/send", {"mode": "delay", "seconds": 1.0}, (False, "timeout", False, True, False)),
    ("aamarsms", "/api", None, (True, "", False, False, False)),
    ("aamarsms", "/api", {"mode": "body", "json": {"success": 0, "response_code": 105,
                                                   "message": "Invalid credential."}},
     (False, "105", False, False, False)),
    ("aamarsms", "/api", {"mode": "body", "json": {"success": 0, "response_code": 106,
                                                   "message": "Your Balance is not sufficient."}},
     (False, "106", True, False, True)),
    ("aamarsms", "/api", {"mode": "status", "status": 503}, (False, "503", True, False, True)),
    ("aamarsms", "/api", {"mode": "malformed"}, (False, "malformed", False, True, False)),
    ("aamarsms", "/api", {"mode": "delay", "seconds": 1.0}, (False, "timeout", False, True, False)),
    ("dinisoft", "/sendtext", None, (True, "", False, False, False)),
    ("dinisoft", "/sendtext", {"mode": "body", "json": {"Status": "101", "Text": "REJECTD"}},
     (False, "101", True, False, True)),
    ("dinisoft", "/sendtext", {"mode": "body", "json": {"Status": "1", "Text": "REJECTD"}},
     (False, "1", False, False, False)),
    ("dinisoft", "/sendtext", {"mode": "body", "json": {"Status": "108", "Text": "REJECTD"}},
     (False, "108", False, False, False)),
    ("dinisoft", "/sendtext", {"mode": "status", "status": 500}, (False, "500", True, False, True)),
    ("dinisoft", "/sendtext", {"mode": "delay", "seconds": 1.0}, (False, "timeout", False, True, False)),
]


@pytest.mark.parametrize("name, endpoint, fault, expected", ROUTE_CASES)
async def test_route_outcomes(mem_env: Env, name: str, endpoint: str, fault: dict | None, expected: tuple) -> None:
    app = {"bdapps": mem_env.bdapps, "aamarsms": mem_env.aamar, "dinisoft": mem_env.dini}[name]
    if fault:
        mem_env.fault(app, endpoint, times=1, **fault)
    (route,) = mem_env.routes((name,))
    if name == "bdapps":
        route.gateway.timeout = aiohttp.ClientTimeout(total=0.3, connect=1.0)

    outcome = await route.send("01812345678", "Hello", kind="notice")

    assert (outcome.accepted, outcome.code, outcome.retryable, outcome.maybe_sent, outcome.failover) == expected
    assert outcome.provider == name and outcome.parts == 1
    if outcome.accepted and name != "aamarsms":  # AamarSMS's send answer carries no id (seed 002)
        assert outcome.message_ids and outcome.message_ids[0]
    assert len(mem_env.calls(app, endpoint)) == 1


async def test_aamarsms_route_uses_otp_endpoint_for_codes(mem_env: Env) -> None:
    (route,) = mem_env.routes(("aamarsms",))
    assert (await route.send(GP, "Your code is 4821", kind="otp")).accepted
    assert (await route.send(GP, "Your parcel is on its way", kind="notice")).accepted
    assert [len(mem_env.calls(mem_env.aamar, e)) for e in ("/otp", "/api")] == [1, 1]
    otp = mem_env.calls(mem_env.aamar, "/otp")[0]["query"]
    assert (otp["to"], otp["text"], otp["from"]) == ("8801712345678", "Your code is 4821", "Alap")


async def test_plain_number_goes_to_bdapps_as_tel_address(mem_env: Env) -> None:
    (route,) = mem_env.routes(("bdapps",))
    await route.send("01812345678", "hi", kind="notice")
    assert mem_env.bdapps_sms[0]["to"] == "tel:8801812345678"
    assert not route.reaches("not a number") and route.reaches(MASKED)


# --- routing policy ---------------------------------------------------------------------------

@pytest.mark.parametrize("to, expected", [
    (MASKED, ["bdapps"]),  # only BDApps can address a masked id
    (ROBI, ["bdapps", "aamarsms", "dinisoft"]),  # a BDApps subscriber's number: configured order
    ("tel: 8801612345678", ["bdapps", "aamarsms", "dinisoft"]),
    ("01812345678", ["bdapps", "aamarsms", "dinisoft"]),  # Robi
    ("+8801612345678", ["bdapps", "aamarsms", "dinisoft"]),  # Airtel
    (GP, ["aamarsms", "dinisoft", "bdapps"]),  # GP: gateways first
    ("01912345678", ["aamarsms", "dinisoft", "bdapps"]),  # Banglalink
    ("০১৫১২৩৪৫৬৭৮", ["aamarsms", "dinisoft", "bdapps"]),  # Teletalk, Bengali digits
    ("12345", []),
])
def test_policy_order(mem_env: Env, to: str, expected: list[str]) -> None:
    routes = {r.name: r for r in mem_env.routes()}
    assert [r.name for r in RoutingPolicy(("bdapps", "aamarsms", "dinisoft")).routes_for(to, routes)] == expected


def test_policy_respects_configured_order_and_availability(mem_env: Env) -> None:
    routes = {r.name: r for r in mem_env.routes(("dinisoft", "bdapps"))}
    policy = RoutingPolicy(parse_routes("dinisoft, aamarsms ,bdapps"))
    assert [r.name for r in policy.routes_for("01812345678", routes)] == ["dinisoft", "bdapps"]
    assert [r.name for r in policy.routes_for(MASKED, routes)] == ["bdapps"]
    for bad in ("bdapps,twilio", "", "bdapps,bdapps"):
        with pytest.raises(ValueError):
            parse_routes(bad)


async def test_masked_id_never_goes_to_a_gateway(env: Env) -> None:
    sender = env.sender()
    env.fault(env.bdapps, "/sms/send", mode="body", json=sms_error("E1603"))  # BDApps keeps failing

    sent = await sender.send(MASKED, "hello", kind="notice")

    assert sent.status is MessageStatus.PARKED  # kept for later, not sent elsewhere
    assert env.calls(env.aamar, "/api") == [] and env.calls(env.dini, "/sendtext") == []
    assert env.accepted_everywhere() == 0


async def test_gp_number_goes_to_a_gateway_first(env: Env) -> None:
    sent = await env.sender().send(GP, "Your recharge is done", kind="notice")

    assert (sent.status, sent.route, sent.parts) == (MessageStatus.ACCEPTED, "aamarsms", 1)
    assert env.calls(env.bdapps, "/sms/send") == [] and env.accepted_everywhere() == 1
    assert env.aamar_sms[0].to == "8801712345678"


async def test_subscriber_goes_through_bdapps(env: Env) -> None:
    sent = await env.sender().send(ROBI, "আপনার অর্ডার নিশ্চিত হয়েছে", kind="notice")

    assert (sent.status, sent.route) == (MessageStatus.ACCEPTED, "bdapps")
    assert sent.message_ids == (env.bdapps_sms[0]["messageId"],)
    assert env.bdapps_sms[0]["encoding"] == "16" and env.accepted_everywhere() == 1


# --- failover ---------------------------------------------------------------------------------

async def test_first_route_down_second_used_once(env: Env) -> None:
    sender = env.sender(("aamarsms", "dinisoft", "bdapps"), down=("aamarsms",))

    sent = await sender.send(GP, "Hello", kind="notice")

    assert (sent.status, sent.route) == (MessageStatus.ACCEPTED, "dinisoft")
    assert [o.code for o in sent.outcomes] == ["connect", ""]
    assert len(env.calls(env.dini, "/sendtext")) == 1 and env.accepted_everywhere() == 1
    record = await env.log.get(sent.id)
    assert (record.status, record.route, record.message_ids) == (MessageStatus.ACCEPTED, "dinisoft",
                                                                 (env.dini_sms[0].message_id,))


@pytest.mark.parametrize("fault", [
    {"mode": "body", "json": sms_error("E1603")},
    {"mode": "body", "json": sms_error("E1602")},
    {"mode": "status", "status": 503},
])
async def test_bdapps_retryable_failure_fails_over(env: Env, fault: dict) -> None:
    env.fault(env.bdapps, "/sms/send", times=1, **fault)

    sent = await env.sender().send(ROBI, "Hello", kind="notice")

    assert (sent.status, sent.route) == (MessageStatus.ACCEPTED, "aamarsms")
    assert len(env.calls(env.bdapps, "/sms/send")) == 1 and env.bdapps_sms == []
    assert len(env.calls(env.aamar, "/api")) == 1 and env.calls(env.dini, "/sendtext") == []
    assert env.accepted_everywhere() == 1


async def test_no_failover_after_acceptance(env: Env) -> None:
    sent = await env.sender().send(ROBI, "Hello", kind="notice")
    assert sent.accepted and len(sent.outcomes) == 1
    assert env.calls(env.aamar, "/api") == [] and env.calls(env.dini, "/sendtext") == []


@pytest.mark.parametrize("first, app_name, endpoint, fault", [
    ("bdapps", "bdapps", "/sms/send", {"mode": "delay", "seconds": 1.0}),
    ("aamarsms", "aamar", "/api", {"mode": "delay", "seconds": 1.0}),
    ("aamarsms", "aamar", "/api", {"mode": "malformed"}),
    ("dinisoft", "dini", "/sendtext", {"mode": "delay", "seconds": 1.0}),
])
async def test_no_failover_after_an_ambiguous_answer(env: Env, first: str, app_name: str, endpoint: str,
                                                     fault: dict) -> None:
    order = (first,) + tuple(n for n in ("bdapps", "aamarsms", "dinisoft") if n != first)
    sender = env.sender(order)
    if first == "bdapps":
        sender.routes["bdapps"].gateway.timeout = aiohttp.ClientTimeout(total=0.3, connect=1.0)
    app = getattr(env, app_name)
    env.fault(app, endpoint, times=1, **fault)

    sent = await sender.send("01812345678", "Hello", kind="notice")

    assert (sent.status, sent.route) == (MessageStatus.UNKNOWN, first)
    assert len(sent.outcomes) == 1 and sent.outcomes[0].maybe_sent
    others = [(a, e) for a, e in ((env.bdapps, "/sms/send"), (env.aamar, "/api"), (env.dini, "/sendtext"))
              if a is not app]
    assert all(env.calls(a, e) == [] for a, e in others)  # never sent twice
    record = await env.log.get(sent.id)
    assert record.status is MessageStatus.UNKNOWN and record.text is None
    assert await env.log.parked_count() == 0
    assert await sender.flush_parked() == []


async def test_permanent_failure_is_not_failed_over(env: Env) -> None:
    env.fault(env.bdapps, "/sms/send", times=1, mode="body", json=sms_error("E1313", "Authentication failed."))

    sent = await env.sender().send(ROBI, "Hello", kind="notice")

    assert (sent.status, sent.code) == (MessageStatus.FAILED, "E1313")
    assert env.calls(env.aamar, "/api") == [] and env.accepted_everywhere() == 0
    assert (await env.log.get(sent.id)).status is MessageStatus.FAILED


async def test_unreachable_address_fails_without_a_call(env: Env) -> None:
    sent = await env.sender(("aamarsms", "dinisoft")).send(MASKED, "Hello")
    assert (sent.status, sent.code) == (MessageStatus.FAILED, "unreachable")
    assert env.calls(env.aamar, "/api") == [] and env.calls(env.dini, "/sendtext") == []


# --- opt-out ----------------------------------------------------------------------------------

@pytest.mark.parametrize("to", [ROBI, "tel: 8801812345678", "01812345678"])
async def test_opt_out_honoured_except_replies(env: Env, to: str) -> None:
    await env.store.set_profile("tel:8801812345678", Profile(opted_out=True, lang="bn"))
    sender = env.sender()

    notice = await sender.send(to, "Big offer today!", kind="notice")
    receipt = await sender.send(to, "Recharge done", kind="receipt")
    otp = await sender.send(to, "Code 1234", kind="otp")
    assert [m.status for m in (notice, receipt, otp)] == [MessageStatus.OPTED_OUT] * 3
    assert env.accepted_everywhere() == 0
    assert await env.log.get(notice.id) is None  # nothing sent, nothing logged

    reply = await sender.send(to, "Your balance is 50 taka", kind="reply")
    own = await sender.send(to, "Recharge of 50 taka done", kind="receipt", reply_to_request=True)
    assert reply.accepted and own.accepted and env.accepted_everywhere() == 2


async def test_masked_subscriber_opt_out(env: Env) -> None:
    await env.store.set_profile(MASKED, Profile(opted_out=True))
    sender = env.sender()
    assert (await sender.send(MASKED, "offer", kind="notice")).status is MessageStatus.OPTED_OUT
    assert (await sender.send(MASKED, "answer", kind="reply")).accepted
    assert (await sender.send("tel:8801899999999", "offer", kind="notice")).accepted  # someone else


# --- parts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, parts", [
    ("আ" * 70, 1), (BENGALI_71, 2), ("আ" * 134, 2), ("আ" * 135, 3), ("a" * 160, 1), ("a" * 161, 2),
])
@pytest.mark.parametrize("to, route", [(ROBI, "bdapps"), (GP, "aamarsms"), ("01912345678", "dinisoft")])
async def test_part_counts(mem_env: Env, text: str, parts: int, to: str, route: str) -> None:
    order = (route,) + tuple(n for n in ("bdapps", "aamarsms", "dinisoft") if n != route)
    sent = await mem_env.sender(order).send(to, text, kind="notice")
    assert (sent.status, sent.route, sent.parts) == (MessageStatus.ACCEPTED, route, parts)
    assert (await mem_env.log.get(sent.id)).parts == parts


# --- message log and delivery reports ---------------------------------------------------------

@pytest.mark.parametrize("word, status", [
    ("DELIVERED", MessageStatus.DELIVERED), ("DELIVRD", MessageStatus.DELIVERED),
    ("EXPIRED", MessageStatus.EXPIRED), ("DELETED", MessageStatus.DELETED),
    ("UNDELIVERABLE", MessageStatus.UNDELIVERABLE), ("UNDELIV", MessageStatus.UNDELIVERABLE),
    ("ACCEPTED", MessageStatus.ACCEPTED), ("ACCEPTD", MessageStatus.ACCEPTED),
    ("UNKNOWN", MessageStatus.UNKNOWN),
    ("REJECTED", MessageStatus.REJECTED), ("REJECTD", MessageStatus.REJECTED),
    (" delivrd ", MessageStatus.DELIVERED),
])
async def test_delivery_report_both_spellings(env: Env, word: str, status: MessageStatus) -> None:
    sender = env.sender()
    sent = await sender.send(ROBI, "Hello", kind="notice")
    before = await env.log.get(sent.id)
    assert (before.status, before.route, before.kind, before.to, before.parts) == (
        MessageStatus.ACCEPTED, "bdapps", "notice", ROBI, 1)
    assert before.created_at == before.sent_at == env.clock.now

    env.clock.advance(5)
    assert await sender.delivery_report("bdapps", sent.message_id, word) is True

    after = await env.log.get(sent.id)
    assert (after.status, after.provider_status, after.updated_at) == (status, word.strip(), env.clock.now)
    assert normalize_status(word) is status


async def test_report_matches_request_id_and_unknown_ids(env: Env) -> None:
    sender = env.sender()
    sent = await sender.send(ROBI, "Hello", kind="notice")
    record = await env.log.get(sent.id)
    assert record.request_id and await env.log.find("bdapps", record.request_id) is not None

    assert await sender.delivery_report("bdapps", "no-such-id", "DELIVERED") is False
    assert await env.log.update_status("aamarsms", sent.message_id, "DELIVERED") is False  # other provider
    assert (await env.log.get(sent.id)).status is MessageStatus.ACCEPTED


async def test_final_state_is_not_replaced_by_a_late_report(env: Env) -> None:
    sender = env.sender()
    sent = await sender.send(ROBI, "Hello", kind="notice")
    assert await sender.delivery_report("bdapps", sent.message_id, "DELIVRD")
    assert await sender.delivery_report("bdapps", sent.message_id, "ACCEPTD")  # known id: True
    assert (await env.log.get(sent.id)).status is MessageStatus.DELIVERED
    assert await sender.delivery_report("bdapps", sent.message_id, "gibberish")
    assert (await env.log.get(sent.id)).status is MessageStatus.DELIVERED


async def test_unrecognised_report_word_is_kept_as_unknown(env: Env) -> None:
    sender = env.sender()
    sent = await sender.send(ROBI, "Hello", kind="notice")
    assert await sender.delivery_report("bdapps", sent.message_id, "WEIRD")
    record = await env.log.get(sent.id)
    assert (record.status, record.provider_status) == (MessageStatus.UNKNOWN, "WEIRD")


# --- DiniSoft polling -------------------------------------------------------------------------

async def test_poll_dinisoft_pending_then_delivered(env: Env) -> None:
    sender = env.sender(("dinisoft", "aamarsms", "bdapps"))
    sent = await sender.send(GP, "Hello", kind="notice")
    other = await sender.send(ROBI, "via bdapps", kind="notice")  # goes to DiniSoft too (first route)
    assert sent.route == other.route == "dinisoft"

    first = await sender.poll_dinisoft()
    assert (first.checked, first.updated, first.errors) == (2, 0, 0)
    assert (await env.log.get(sent.id)).status is MessageStatus.ACCEPTED

    second = await sender.poll_dinisoft()
    assert (second.checked, second.updated) == (2, 2)
    record = await env.log.get(sent.id)
    assert (record.status, record.provider_status) == (MessageStatus.DELIVERED, "DELIVRD")

    third = await sender.poll_dinisoft()  # settled: DiniSoft is not asked again (it would say 114)
    assert third.checked == 0
    assert len(env.calls(env.dini, "/getstatus")) == 4


async def test_poll_dinisoft_failed_and_errors(aiohttp_server, store: Store) -> None:
    env = await _start_env(aiohttp_server, store, dinisoft={"status_sequence": ("FAILED",)})
    try:
        sender = env.sender(("dinisoft",))
        sent = await sender.send(GP, "Hello", kind="notice")
        ok = await sender.send("01912345678", "Hello", kind="notice")

        env.fault(env.dini, "/getstatus", mode="status", status=503, times=2)
        report = await sender.poll_dinisoft()
        assert (report.checked, report.updated, report.errors) == (2, 0, 2)

        report = await sender.poll_dinisoft(limit=1)
        assert (report.checked, report.updated) == (1, 1)
        report = await sender.poll_dinisoft()
        assert (report.checked, report.updated) == (1, 1)
        assert {(await env.log.get(i)).status for i in (sent.id, ok.id)} == {MessageStatus.REJECTED}
        assert (await sender.poll_dinisoft()).checked == 0
    finally:
        for client in env.closers:
            await client.aclose()
        await env.http.close()


async def test_poll_dinisoft_already_queried_stops_asking(env: Env) -> None:
    sender = env.sender(("dinisoft",))
    sent = await sender.send(GP, "Hello", kind="notice")
    env.fault(env.dini, "/getstatus", mode="body", json={"Status": "114", "Text": "REJECTD"}, times=1)

    report = await sender.poll_dinisoft()

    assert (report.checked, report.updated) == (1, 1)
    assert (await env.log.get(sent.id)).status is MessageStatus.UNKNOWN
    assert (await sender.poll_dinisoft()).checked == 0


# --- the log on its own, and the factory ------------------------------------------------------

async def test_message_log_ttl_and_backends(store: Store) -> None:
    log = open_message_log(store, ttl=60)
    assert log.name == store.name
    assert isinstance(open_message_log(None), MemoryMessageLog)


async def test_redis_log_keys_are_short_lived(mem_env: Env, redis_store) -> None:
    env = mem_env
    log = open_message_log(redis_store)
    sender = env.sender(log=log)
    sent = await sender.send(ROBI, "Hello", kind="notice")
    env.fault(env.bdapps, "/sms/send", times=1, mode="body", json=sms_error("E1319"))
    parked = await sender.send(MASKED, "later", kind="notice")
    assert parked.parked

    prefix = redis_store.prefix
    record_key, parked_key = f"{prefix}m:{sent.id}", f"{prefix}m:{parked.id}"
    index_key = f"{prefix}mi:bdapps:{sent.message_id}"
    for key in (record_key, index_key):
        assert 0 < await redis_store.redis.ttl(key) <= 7 * 86400
    # a parked record outlives its not-before time by the usual TTL
    assert 7 * 86400 - 5 <= await redis_store.redis.ttl(parked_key) <= (parked.not_before - time.time()) + 7 * 86400 + 5
    assert await redis_store.redis.zcard(f"{prefix}mq") == 1


async def test_send_rejects_bad_input(mem_env: Env) -> None:
    sender = mem_env.sender()
    with pytest.raises(ValueError):
        await sender.send(ROBI, "", kind="notice")
    with pytest.raises(ValueError):
        await sender.send(ROBI, "hi", kind="advert")
    assert mem_env.calls(mem_env.bdapps, "/sms/send") == []


async def test_build_sms_sender_from_settings(env: Env) -> None:
    base = make_settings(
        bdapps_base_url=env.urls["bdapps"],
        aamarsms_base_url=env.urls["aamarsms"], aamarsms_user=AAMAR_USER, aamarsms_password=AAMAR_PASS,
        aamarsms_from="Alap",
        dinisoft_base_url=env.urls["dinisoft"], dinisoft_api_key="", dinisoft_secret_key="",
    )
    settings = base.model_copy(update={"sms_routes": "aamarsms,dinisoft,bdapps", "sms_rate": 0,
                                       "bdapps_sms_source_address": "21213"})
    sender = build_sms_sender(settings, env.http, env.store)
    try:
        assert list(sender.routes) == ["aamarsms", "bdapps"]  # DiniSoft has no credentials
        assert sender.rate == 0 and sender.log.name == env.store.name

        via_gateway = await sender.send(GP, "Hello", kind="notice")
        via_bdapps = await sender.send(MASKED, "Hello", kind="notice")
        assert (via_gateway.route, via_bdapps.route) == ("aamarsms", "bdapps")
        assert env.calls(env.bdapps, "/sms/send")[0]["json"]["sourceAddress"] == "21213"
    finally:
        await sender.aclose()
