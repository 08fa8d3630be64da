"""The recharge saga against the sandbox fakes over real HTTP, on a real Redis ledger: one test
per failure point. Each test asserts the calls the fakes received (their /_control/calls), the
money they actually moved (CAAS applied debits, eCare recharges), the final ledger state and
the SMS receipts (the BDApps fake's sent SMS).

The harness (`Env`, `env`) is also used by test_worker_crash_and_resume.py and
test_money_conservation_property.py."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from server.config import REPO_ROOT
from server.integrations.base import Timeouts
from server.integrations.caas import CaasClient
from server.integrations.ecare import ECareClient, NumberType, Operator
from server.messaging import SmsSender, build_sms_sender
from server.recharge import RechargeSaga, SagaPolicy
from server.recharge.receipts import build_receipts
from server.render.environment import Renderer
from server.sandbox.bdapps import create_bdapps_fake, sent_sms
from server.sandbox.ecare import ECARE_PATH, create_ecare_fake
from server.store import Store
from server.store.ledger import Ledger, RechargeRecord, RechargeState, new_record, open_ledger
from tests.conftest import APP_ID, PASSWORD, redis_test_store
from tests.conftest import test_settings as make_settings

S = RechargeState
ECARE_ID, ECARE_PASS = "sandbox", "sandbox-pass"
PAYER = "tel:8801812345678"  # a seeded CAAS subscriber with 100.00 taka
PAYER_MSISDN = "01812345678"
MASKED = "tel:B%3C4pbgsmXQ7Lk2iYp0aR1dZ"  # seeded with 42.75 taka
RECIPIENT = "01712345678"
DEBIT, MRC, MRCSTATUS, BLCK, SMS = "/caas/direct/debit", "MRC", "MRCSTATUS", "BLCK", "/sms/send"

CLIENT_TIMEOUT = 0.3  # seconds: a delay fault longer than this is a timeout with the outcome unknown
SLOW = 0.6  # a delay fault: the fake still completes the call after the caller gave up
FAST_POLICY = SagaPolicy(retry_delay=0.05, retry_max_delay=0.2, poll_delay=0.02, poll_max_delay=0.1,
                         poll_timeout=5.0, give_up_after=5.0, max_unknown=3, jitter=0.0)

WALLET_OK = {"STATUS": "OK", "MAIN_BALANCE": "3,500.00", "STOCK_BALANCE": "30.00", "COMMISSION_TYPE": "Prepaid",
             "COMMISSION_RATE": "3.00", "MESSAGE": "Balance Equerry Success"}
MAINTENANCE = {"STATUS": "MAINTENANCE", "MESSAGE": "Server Maintenance Mode Running, Try After Sometime"}


def body(**answer: str) -> dict[str, Any]:
    return {"mode": "body", "json": answer}


@dataclass
class Env:
    bdapps: web.Application  # BDApps gateway fake: CAAS and /sms/send under one base URL
    ecare_app: web.Application
    bdapps_url: str
    ecare_root: str
    http: aiohttp.ClientSession
    store: Store
    ledger: Ledger
    caas: CaasClient
    ecare: ECareClient
    sender: SmsSender
    renderer: Renderer
    closers: list[Any] = field(default_factory=list)

    @property
    def ecare_url(self) -> str:
        return self.ecare_root + ECARE_PATH

    def saga(self, policy: SagaPolicy = FAST_POLICY, *, worker_id: str = "test", **changes: Any) -> RechargeSaga:
        if changes:
            policy = dataclasses.replace(policy, **changes)
        return RechargeSaga(self.ledger, self.caas, self.ecare, self.sender, self.renderer, policy,
                            worker_id=worker_id)

    async def request(self, *, amount: int = 50, recipient: str = RECIPIENT, payer: str = PAYER,
                      payer_msisdn: str | None = PAYER_MSISDN, language: str = "en", key: str | None = None,
                      operator: str = "GRAMEENPHONE", number_type: str = "PREPAID", enqueue: bool = True) -> RechargeRecord:
        record = new_record(idempotency_key=key or f"session-{time.time_ns()}", payer=payer,
                            payer_msisdn=payer_msisdn, recipient=recipient, operator=operator,
                            number_type=number_type, amount=Decimal(amount), language=language)
        record, _ = await self.ledger.create(record)
        if enqueue:
            await self.ledger.enqueue(record.id)
        return record

    # -- what the fakes saw ------------------------------------------------------------------------
    async def _get(self, url: str) -> Any:
        async with self.http.get(url) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def calls(self, endpoint: str) -> int:
        root = self.bdapps_url if endpoint.startswith("/") else self.ecare_root
        return sum(c["endpoint"] == endpoint for c in await self._get(f"{root}/_control/calls"))

    async def counts(self) -> dict[str, int]:
        return {name: await self.calls(name) for name in (BLCK, DEBIT, MRC, MRCSTATUS)}

    async def debits(self) -> list[dict[str, Any]]:
        """Debits the CAAS fake actually applied."""
        return await self._get(f"{self.bdapps_url}/_control/caas/debits")

    async def recharges(self) -> list[dict[str, Any]]:
        """Recharges eCare accepted (with their status: SUCCESS / FAILED / ...)."""
        return await self._get(f"{self.ecare_root}/_control/ecare/recharges")

    def sms(self) -> list[dict[str, Any]]:
        return list(sent_sms(self.bdapps))

    # -- steering the fakes ------------------------------------------------------------------------
    async def _post(self, url: str, data: Any) -> None:
        async with self.http.post(url, json=data) as resp:
            assert resp.status == 200, await resp.text()

    async def fault(self, endpoint: str, **fault: Any) -> None:
        root = self.bdapps_url if endpoint.startswith("/") else self.ecare_root
        await self._post(f"{root}/_control/faults", {"endpoint": endpoint, **fault})

    async def clear_faults(self) -> None:
        for root in (self.bdapps_url, self.ecare_root):
            async with self.http.delete(f"{root}/_control/faults") as resp:
                assert resp.status == 200

    async def balance(self, subscriber: str, taka: str) -> None:
        await self._post(f"{self.bdapps_url}/_control/caas/balance", {"subscriberId": subscriber, "balance": taka})

    async def wallet(self, taka: str) -> None:
        await self._post(f"{self.ecare_root}/_control/ecare/wallet", {"main_balance": taka})

    async def script(self, refid: str, statuses: list[str]) -> None:
        await self._post(f"{self.ecare_root}/_control/ecare/script", {"refid": refid, "statuses": statuses})

    async def settle(self, seconds: float = SLOW + 0.2) -> None:
        """Let calls the fakes are still holding (delay faults) complete."""
        await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        await self.sender.aclose()
        await self.caas.aclose()
        await self.ecare.aclose()
        await self.http.close()


_renderer: Renderer | None = None


def renderer() -> Renderer:
    global _renderer
    if _renderer is None:
        _renderer = Renderer(REPO_ROOT / "templates", REPO_ROOT / "locales")
    return _renderer


async def start_env(aiohttp_server, store: Store, *, timeout: float = CLIENT_TIMEOUT) -> Env:
    """Both fakes on loopback, the real clients (short timeouts), the SMS sender on the BDApps
    route of the gateway fake, and the ledger next to `store`."""
    bdapps = create_bdapps_fake("http://127.0.0.1:9/unset", APP_ID, PASSWORD)
    ecare_app = create_ecare_fake(ECARE_ID, ECARE_PASS)
    bdapps_server = await aiohttp_server(bdapps)
    ecare_server = await aiohttp_server(ecare_app)
    bdapps_url = str(bdapps_server.make_url("")).rstrip("/")
    ecare_root = str(ecare_server.make_url("")).rstrip("/")
    http = aiohttp.ClientSession()
    timeouts = Timeouts(connect=0.5, read=timeout, write=0.5, pool=0.5)
    caas = CaasClient(bdapps_url, APP_ID, PASSWORD, timeouts=timeouts)
    ecare = ECareClient(ecare_root + ECARE_PATH, ECARE_ID, ECARE_PASS, timeouts=timeouts)
    settings = make_settings(bdapps_base_url=bdapps_url, sms_routes="bdapps", sms_rate=0.0)
    sender = build_sms_sender(settings, http, store)
    return Env(bdapps, ecare_app, bdapps_url, ecare_root, http, store, open_ledger(store), caas, ecare, sender,
               renderer())


@pytest.fixture
async def env(aiohttp_server, redis_url: str) -> AsyncIterator[Env]:
    async with redis_test_store(redis_url) as store:
        e = await start_env(aiohttp_server, store)
        try:
            yield e
        finally:
            await e.aclose()


async def debited_and_recharged_but_unrecorded(env: Env, record: RechargeRecord) -> None:
    """A worker debited and sent the MRC, but the ledger lost its last writes (a Redis crash with
    appendfsync everysec): the record says DEBITED while eCare already has the refid."""
    await env.ledger.transition(record.id, S.REQUESTED, S.DEBITING)
    debit = await env.caas.direct_debit(PAYER, Decimal(50), record.external_trx_id)
    await env.ledger.transition(record.id, S.DEBITING, S.DEBITED, caas_trx_id=debit.internal_trx_id)
    await env.ecare.recharge(RECIPIENT, 50, Operator.GRAMEENPHONE, NumberType.PREPAID, record.refid)


def states(record: RechargeRecord) -> list[str]:
    return [h.state.value for h in record.history]


def texts(env: Env, to: str) -> list[str]:
    return [m["message"] for m in env.sms() if m["to"] == to]


def tel(number: str) -> str:
    return "tel:88" + number


HAPPY = ["REQUESTED", "DEBITING", "DEBITED", "RECHARGING", "SUBMITTED", "COMPLETED"]


# --- the journey -----------------------------------------------------------------------------------

async def test_happy_path_debits_once_recharges_once_and_sends_both_receipts(env: Env):
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED and done.receipts_done
    # The default eCare progression: PENDING, PROCESSING, SUCCESS (one per poll).
    assert await env.counts() == {BLCK: 1, DEBIT: 1, MRC: 1, MRCSTATUS: 3}
    [debit] = await env.debits()
    assert debit == {"externalTrxId": record.external_trx_id, "subscriberId": PAYER, "amount": "50",
                     "internalTrxId": done.caas_trx_id}
    [recharge] = await env.recharges()
    assert (recharge["refid"], recharge["number"], recharge["amount"], recharge["operator"], recharge["status"]) == (
        record.refid, RECIPIENT, "50", "7", "SUCCESS")
    assert done.ecare_trx_id == recharge["trxid"]
    # A history line per new MRCSTATUS word: RECEIVED, then PENDING, then PROCESSING.
    assert states(done) == ["REQUESTED", "DEBITING", "DEBITED", "RECHARGING", "SUBMITTED", "SUBMITTED",
                            "SUBMITTED", "COMPLETED"]
    assert [h.note for h in done.history[5:7]] == ["MRCSTATUS PENDING", "MRCSTATUS PROCESSING"]
    assert texts(env, PAYER) == [f"Recharge of Tk 50.00 to {RECIPIENT} successful. "
                                 f"eCare TrxID: {recharge['trxid']}. Ref {record.id}"]
    assert texts(env, tel(RECIPIENT)) == [f"Your number received a recharge of Tk 50.00 from {PAYER_MSISDN}. "
                                          f"eCare TrxID: {recharge['trxid']}."]
    assert len(env.sms()) == 2
    assert done.payer_receipt.startswith("ACCEPTED") and done.recipient_receipt.startswith("ACCEPTED")


async def test_receipts_follow_the_subscribers_language(env: Env):
    record = await env.request(amount=20, language="bn")
    done = await env.saga().run(record.id, timeout=10)
    [payer] = texts(env, PAYER)
    assert payer.startswith("০১৭১২৩৪৫৬৭৮ নম্বরে ২০.০০৳ রিচার্জ সফল হয়েছে।")
    assert done.ecare_trx_id in payer  # ids stay ASCII so they can be matched
    assert env.sms()[0]["encoding"] == "16"  # UCS-2 on the wire


async def test_recharging_ones_own_number_sends_one_receipt(env: Env):
    record = await env.request(recipient=PAYER_MSISDN)
    await env.saga().run(record.id, timeout=10)
    assert [m["to"] for m in env.sms()] == [PAYER]


async def test_a_masked_payer_is_charged_and_told_at_its_masked_address(env: Env):
    record = await env.request(amount=40, payer=MASKED, payer_msisdn=None)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED
    assert [(d["subscriberId"], d["amount"]) for d in await env.debits()] == [(MASKED, "40")]
    assert [m["to"] for m in env.sms()] == [MASKED, tel(RECIPIENT)]
    assert "from" not in texts(env, tel(RECIPIENT))[0]


async def test_a_second_confirmation_and_duplicated_enqueues_move_money_once(env: Env):
    record = await env.request(key="session-77:confirm")
    again = await env.request(key="session-77:confirm", amount=99)  # the same request confirmed twice
    assert again.id == record.id and again.amount == "50"
    await env.ledger.enqueue(record.id)
    saga = env.saga()
    done = await saga.run(record.id, timeout=10)
    await saga.run(record.id, timeout=10)  # a redelivered job on a final record does nothing
    assert done.state is S.COMPLETED
    assert (await env.counts())[DEBIT] == 1 and (await env.counts())[MRC] == 1
    assert len(await env.debits()) == 1 and len(await env.recharges()) == 1
    assert len(env.sms()) == 2
    assert len(await env.ledger.list()) == 1


# --- before any money: eCare wallet, CAAS refusals ---------------------------------------------------

async def test_known_low_ecare_wallet_never_takes_the_subscribers_money(env: Env):
    await env.wallet("30.00")
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.FAILED_NOT_CHARGED and done.reason == "wallet_low"
    assert await env.counts() == {BLCK: 1, DEBIT: 0, MRC: 0, MRCSTATUS: 0}
    assert await env.debits() == []
    assert texts(env, PAYER) == [f"Recharge of Tk 50.00 to {RECIPIENT} was not done: the recharge service is "
                                 f"unavailable right now. No money was taken from your account. Ref {record.id}"]
    assert len(env.sms()) == 1


async def test_debit_declined_e1308_is_not_charged_and_told(env: Env):
    await env.balance(PAYER, "10.00")
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.FAILED_NOT_CHARGED and done.reason == "declined" and "E1308" in done.note
    assert await env.counts() == {BLCK: 1, DEBIT: 1, MRC: 0, MRCSTATUS: 0}
    assert await env.debits() == [] and await env.recharges() == []
    assert texts(env, PAYER) == [f"Recharge of Tk 50.00 to {RECIPIENT} was not done: the payment was declined. "
                                 f"No money was taken from your account. Ref {record.id}"]


async def test_debit_insufficient_balance_e1326_is_not_charged(env: Env):
    await env.fault(DEBIT, **body(statusCode="E1326", statusDetail="Insufficient balance."), times=1)
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.FAILED_NOT_CHARGED and done.reason == "insufficient_balance"
    assert (await env.counts())[DEBIT] == 1 and await env.debits() == []
    assert "your balance is too low" in texts(env, PAYER)[0]


async def test_debit_throttled_is_retried_under_the_same_external_trx_id(env: Env):
    await env.fault(DEBIT, **body(statusCode="E1318", statusDetail="Transaction limit per second"), times=2)
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED
    sent = [c["json"]["externalTrxId"] for c in await env._get(f"{env.bdapps_url}/_control/calls")
            if c["endpoint"] == DEBIT]
    assert sent == [record.external_trx_id] * 3
    assert len(await env.debits()) == 1


async def test_debit_timeout_after_the_charge_happened_is_asked_again_not_charged_again(env: Env):
    # The first debit is held longer than the client waits; the fake completes it anyway.
    await env.fault(DEBIT, mode="delay", seconds=SLOW, times=1)
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    await env.settle()
    assert done.state is S.COMPLETED and done.debit_unknown == 1
    assert (await env.counts())[DEBIT] == 2  # the timed-out call and the same call again
    [debit] = await env.debits()  # ... and money taken once
    assert debit["externalTrxId"] == record.external_trx_id and debit["amount"] == "50"
    assert len(await env.recharges()) == 1
    assert len(texts(env, PAYER)) == 1 and "successful" in texts(env, PAYER)[0]


async def test_debit_timeout_without_a_charge_ends_not_charged(env: Env):
    # The held debit is declined when the fake gets to it (no balance): nothing was charged;
    # asking again under the same id says so.
    await env.balance(PAYER, "0.00")
    await env.fault(DEBIT, mode="delay", seconds=SLOW, times=1)
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    await env.settle()
    assert done.state is S.FAILED_NOT_CHARGED and done.reason == "declined" and done.debit_unknown == 1
    assert await env.counts() == {BLCK: 1, DEBIT: 2, MRC: 0, MRCSTATUS: 0}
    assert await env.debits() == []
    assert "No money was taken" in texts(env, PAYER)[0]


async def test_unreadable_debit_answer_is_asked_again_under_the_same_id(env: Env):
    await env.fault(DEBIT, mode="malformed", times=1)  # a 502 page: the outcome is unknown
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED and done.debit_unknown == 1
    assert (await env.counts())[DEBIT] == 2 and len(await env.debits()) == 1


async def test_debit_outcomes_unknown_too_often_need_review_and_are_never_charged_twice(env: Env):
    await env.fault(DEBIT, mode="delay", seconds=SLOW)  # every debit outlives the client
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    await env.settle()
    assert done.state is S.NEEDS_REVIEW and done.reason == "debit_unknown" and done.debit_unknown == 3
    assert await env.counts() == {BLCK: 1, DEBIT: 3, MRC: 0, MRCSTATUS: 0}  # max_unknown = 3
    assert len(await env.debits()) == 1  # charged once (the fake completed the first), never more
    assert texts(env, PAYER) == [f"Your recharge of Tk 50.00 to {RECIPIENT} could not be confirmed yet. We are "
                                 f"checking it; if it did not go through, your money will be refunded. "
                                 f"Ref {record.id}"]


async def test_caas_duplicate_e1337_needs_review(env: Env):
    await env.fault(DEBIT, **body(statusCode="E1337", statusDetail="Duplicate request."), times=1)
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.NEEDS_REVIEW and done.reason == "debit_duplicate"
    assert (await env.counts())[MRC] == 0


# --- after the debit: eCare ---------------------------------------------------------------------------

async def test_ecare_mrc_failed_after_a_debit_requires_a_refund(env: Env):
    await env.fault(MRC, **body(STATUS="FAILED", RECHARGE_STATUS="FAILED", MESSAGE="Recharge Request Failed."),
                    times=1)
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.REFUND_REQUIRED and done.reason == "rejected"
    assert await env.counts() == {BLCK: 1, DEBIT: 1, MRC: 1, MRCSTATUS: 0}
    assert len(await env.debits()) == 1 and await env.recharges() == []
    assert texts(env, PAYER) == [f"Recharge of Tk 50.00 to {RECIPIENT} failed. The Tk 50.00 taken from your "
                                 f"account will be refunded. Ref {record.id}"]
    assert texts(env, tel(RECIPIENT)) == []


async def test_ecare_reject_after_a_debit_requires_a_refund(env: Env):
    await env.fault(MRC, **body(STATUS="FAILED", RECHARGE_STATUS="REJECT", MESSAGE="Sorry! Invalid Credentials."),
                    times=1)
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.REFUND_REQUIRED and done.reason == "rejected" and "REJECT" in done.note
    assert await env.counts() == {BLCK: 1, DEBIT: 1, MRC: 1, MRCSTATUS: 0}
    assert len(await env.debits()) == 1 and await env.recharges() == []
    assert "will be refunded" in texts(env, PAYER)[0]


async def test_ecare_lowbalance_at_mrc_requires_a_refund(env: Env):
    # BLCK said the wallet was fine; by the MRC it is not (another sale drained it).
    await env.fault(BLCK, mode="body", json=WALLET_OK, times=1)
    await env.wallet("20.00")
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.REFUND_REQUIRED and done.reason == "wallet_low"
    assert await env.counts() == {BLCK: 1, DEBIT: 1, MRC: 1, MRCSTATUS: 0}
    assert len(await env.debits()) == 1 and await env.recharges() == []
    assert "will be refunded" in texts(env, PAYER)[0]


async def test_mrcstatus_failed_requires_a_refund_with_the_ecare_trx_id(env: Env):
    record = await env.request(amount=50)
    await env.script(record.refid, ["PROCESSING", "FAILED"])
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.REFUND_REQUIRED and done.reason == "recharge_failed"
    assert await env.counts() == {BLCK: 1, DEBIT: 1, MRC: 1, MRCSTATUS: 2}
    [recharge] = await env.recharges()
    assert recharge["status"] == "FAILED" and done.ecare_trx_id == recharge["trxid"]
    assert texts(env, PAYER) == [f"Recharge of Tk 50.00 to {RECIPIENT} failed. eCare TrxID: {recharge['trxid']}. "
                                 f"The Tk 50.00 taken from your account will be refunded. Ref {record.id}"]


async def test_ecare_duplicate_means_already_submitted_and_is_resolved_by_mrcstatus(env: Env):
    # A worker debited and sent the MRC, but the ledger lost its last writes (Redis crash with
    # appendfsync everysec): the record says DEBITED. The next worker sends the MRC again under
    # the SAME refid; eCare answers DUPLICATE and MRCSTATUS tells the outcome.
    record = await env.request(amount=50)
    await debited_and_recharged_but_unrecorded(env, record)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED
    assert await env.counts() == {BLCK: 0, DEBIT: 1, MRC: 2, MRCSTATUS: 3}
    assert len(await env.debits()) == 1 and len(await env.recharges()) == 1
    assert any("DUPLICATE" in h.note for h in done.history)
    assert len(texts(env, PAYER)) == 1


async def test_mrc_timeout_is_resolved_by_mrcstatus_never_a_second_recharge(env: Env):
    await env.fault(MRC, mode="delay", seconds=SLOW, times=1)
    record = await env.request(amount=50)
    done = await env.saga().run(record.id, timeout=10)
    await env.settle()
    assert done.state is S.COMPLETED and done.recharge_unknown == 1
    counts = await env.counts()
    # The same refid again once MRCSTATUS said eCare did not have it yet; the late first MRC
    # then met DUPLICATE. One recharge either way.
    assert counts[DEBIT] == 1 and counts[MRC] == 2
    [recharge] = await env.recharges()
    assert recharge["refid"] == record.refid and recharge["status"] == "SUCCESS"


async def test_ecare_maintenance_is_retried_with_the_same_refid(env: Env):
    await env.fault(MRC, mode="body", json=MAINTENANCE, times=2)
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED
    calls = [c["query"]["refid"] for c in await env._get(f"{env.ecare_root}/_control/calls") if c["endpoint"] == MRC]
    assert calls == [record.refid] * 3
    assert (await env.counts())[DEBIT] == 1 and len(await env.recharges()) == 1


async def test_ecare_maintenance_for_too_long_requires_a_refund(env: Env):
    await env.fault(MRC, mode="body", json=MAINTENANCE)
    record = await env.request(amount=50)
    done = await env.saga(give_up_after=0.5).run(record.id, timeout=10)
    assert done.state is S.REFUND_REQUIRED and done.reason == "recharge_unavailable"
    assert (await env.counts())[DEBIT] == 1 and len(await env.debits()) == 1 and await env.recharges() == []
    assert (await env.counts())[MRC] >= 2 and not done.recharge_maybe_sent
    assert "will be refunded" in texts(env, PAYER)[0]


async def test_ecare_maintenance_before_the_debit_waits_without_charging(env: Env):
    await env.fault(BLCK, mode="body", json=MAINTENANCE, times=2)
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED
    assert await env.counts() == {BLCK: 3, DEBIT: 1, MRC: 1, MRCSTATUS: 3}


async def test_mrcstatus_stuck_in_processing_then_success(env: Env):
    record = await env.request(amount=50)
    await env.script(record.refid, ["PROCESSING"] * 6 + ["SUCCESS"])
    started = time.monotonic()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED and done.polls == 7 and done.ecare_status == "SUCCESS"
    assert await env.counts() == {BLCK: 1, DEBIT: 1, MRC: 1, MRCSTATUS: 7}
    # Polls back off (0.02, 0.04, 0.08, then the 0.1 cap): well under a second, never a busy loop.
    assert 0.3 < time.monotonic() - started < 3
    assert states(done) == ["REQUESTED", "DEBITING", "DEBITED", "RECHARGING", "SUBMITTED", "SUBMITTED", "COMPLETED"]
    assert len(env.sms()) == 2


async def test_mrcstatus_that_never_ends_needs_review(env: Env):
    record = await env.request(amount=50)
    await env.script(record.refid, ["PROCESSING"])
    done = await env.saga(poll_timeout=0.5).run(record.id, timeout=10)
    assert done.state is S.NEEDS_REVIEW and done.reason == "status_unknown"
    assert len(await env.debits()) == 1 and (await env.counts())[MRC] == 1
    assert "could not be confirmed" in texts(env, PAYER)[0]


async def test_an_invalid_operator_stops_before_any_call(env: Env):
    record = await env.request(operator="NOKIA")
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.FAILED_NOT_CHARGED and done.reason == "invalid"
    assert await env.counts() == {BLCK: 0, DEBIT: 0, MRC: 0, MRCSTATUS: 0}
    assert "the request was not valid" in texts(env, PAYER)[0]


async def test_receipts_survive_an_sms_gateway_outage(env: Env):
    await env.fault(SMS, mode="status", status=503)  # the only SMS route is down
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    # The SmsSender parks the receipts (flush_parked sends them later, in the worker or the web
    # app); the saga notes them as handled and never sends them twice.
    assert done.state is S.COMPLETED and done.receipts_done
    assert done.payer_receipt.startswith("PARKED ") and done.recipient_receipt.startswith("PARKED ")
    assert await env.sender.log.parked_count() == 2 and env.sms() == []


def test_every_receipt_text_is_translated():
    from server.recharge.receipts import MSGIDS

    r = renderer()
    for msgid in MSGIDS:
        assert r.gettext("bn", msgid) != msgid, msgid
        assert r.gettext("en", msgid) == msgid
    record = new_record(idempotency_key="k", payer=PAYER, payer_msisdn=None, recipient=RECIPIENT, operator="7",
                        number_type="1", amount=10, language="fr")
    assert build_receipts(r, record) == []  # not final: nothing to say yet


@pytest.mark.parametrize("operator, number_type, recipient, codes", [
    ("Grameenphone", "Prepaid", "01712345678", ("7", "1")),
    ("Grameenphone", "Skitto", "01312345678", ("3", "3")),  # eCare: Grameenphone = 3/7 by prefix
    ("Banglalink", "Power Load", "01412345678", ("4", "4")),
    ("Robi", "Postpaid", "01712345678", ("8", "2")),  # a ported number: the subscriber's choice wins
    ("6", "1", "01612345678", ("6", "1")),
])
async def test_the_flows_spellings_reach_ecare_as_its_codes(env: Env, operator, number_type, recipient, codes):
    record = await env.request(operator=operator, number_type=number_type, recipient=recipient)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED
    [call] = [c["query"] for c in await env._get(f"{env.ecare_root}/_control/calls") if c["endpoint"] == MRC]
    assert (call["operator"], call["number_type"], call["number"], call["amount"], call["refid"]) == (
        *codes, recipient, "50", record.refid)


# --- review fixes: unrecorded debits, unknown codes, fenced writes, refunds checked first ----------------

async def test_a_debit_sent_by_a_dead_worker_counts_as_one_unknown_outcome(env: Env):
    # The write before the call marks it as possibly sent; the worker dies before the answer.
    record = await env.request(amount=50)
    await env.ledger.transition(record.id, S.REQUESTED, S.DEBITING, "wallet ok", by="dead")
    await env.ledger.update(record.id, S.DEBITING, attempts=1, debit_maybe_sent=True, debit_unknown=0)
    await env.caas.direct_debit(PAYER, Decimal(50), record.external_trx_id)
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.COMPLETED and done.debit_unknown == 1 and not done.debit_maybe_sent
    assert len(await env.debits()) == 1 and (await env.counts())[DEBIT] == 2


async def test_answered_throttling_is_not_an_unknown_outcome(env: Env):
    # E1318 is an answer: the flag is cleared, so a give-up without any unanswered call stays "not charged".
    await env.fault(DEBIT, **body(statusCode="E1318", statusDetail="Transaction limit per second"))
    record = await env.request()
    done = await env.saga(give_up_after=0.3).run(record.id, timeout=10)
    assert done.state is S.FAILED_NOT_CHARGED and done.reason == "unavailable" and done.debit_unknown == 0
    assert (await env.counts())[DEBIT] >= 2 and await env.debits() == []


async def test_an_unknown_caas_code_every_time_needs_review_never_not_charged(env: Env):
    await env.fault(DEBIT, **body(statusCode="E1601", statusDetail="System experienced an unexpected error."))
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.NEEDS_REVIEW and done.reason == "debit_unknown" and done.debit_unknown == 3
    assert (await env.counts())[DEBIT] == 3  # max_unknown, all under the same externalTrxId


async def test_a_known_refusal_code_is_still_not_charged(env: Env):
    await env.fault(DEBIT, **body(statusCode="E1313", statusDetail="Authentication failed."))
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is S.FAILED_NOT_CHARGED and done.reason == "debit_error"
    assert (await env.counts())[DEBIT] == 1


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_ledger_writes_fenced_by_a_lease_that_ran_out_write_nothing(env: Env, backend: str):
    from server.store.ledger import LeaseLost, MemoryLedger

    ledger = MemoryLedger() if backend == "memory" else env.ledger
    record = new_record(idempotency_key=f"fence-{time.time_ns()}", payer=PAYER, payer_msisdn=None,
                        recipient=RECIPIENT, operator="7", number_type="1", amount=10, language="en")
    record, _ = await ledger.create(record, enqueue=True)
    [old] = await ledger.claim("old", lease=0.1)
    written = await ledger.update(record.id, S.REQUESTED, lease=old, attempts=1)  # ours: written
    assert written.attempts == 1
    await asyncio.sleep(0.15)
    with pytest.raises(LeaseLost):  # expired, nobody else has it yet: still refused
        await ledger.update(record.id, S.REQUESTED, lease=old, attempts=2)
    [new] = await ledger.claim("new", lease=10)
    with pytest.raises(LeaseLost):
        await ledger.transition(record.id, S.REQUESTED, S.FAILED_NOT_CHARGED, "stale", lease=old)
    current = await ledger.get(record.id)
    assert current.state is S.REQUESTED and current.attempts == 1 and current.version == written.version
    moved = await ledger.transition(record.id, S.REQUESTED, S.DEBITING, "new owner", lease=new)
    assert moved.state is S.DEBITING
    assert (await ledger.update(record.id, S.DEBITING, attempts=5)).attempts == 5  # unfenced (operator) writes go


@pytest.fixture
async def slow_env(aiohttp_server, redis_url: str) -> AsyncIterator[Env]:
    async with redis_test_store(redis_url) as store:
        e = await start_env(aiohttp_server, store, timeout=3.0)
        try:
            yield e
        finally:
            await e.aclose()


async def test_a_charge_answered_after_the_record_was_ended_not_charged_goes_to_review(slow_env: Env):
    env = slow_env
    await env.fault(DEBIT, mode="delay", seconds=0.5, times=1)
    record = await env.request(amount=50)
    await env.ledger.transition(record.id, S.REQUESTED, S.DEBITING, "wallet ok", by="setup")
    step = asyncio.create_task(env.saga().step(record.id))  # no lease: an unfenced writer
    await asyncio.sleep(0.2)
    # Meanwhile another (unfenced) writer ends the record "not charged".
    await env.ledger.transition(record.id, S.DEBITING, S.FAILED_NOT_CHARGED, "elsewhere", by="other",
                                reason="declined", receipts_done=True)
    await step
    done = await env.ledger.get(record.id)
    assert len(await env.debits()) == 1  # the debit answered after the record was ended
    assert done.state is S.NEEDS_REVIEW and done.reason == "debit_after_end"
    assert done.caas_trx_id and done.receipts_done
    assert any("could not be confirmed" in t for t in texts(env, PAYER))


async def test_maintenance_give_up_with_mrcstatus_down_too_needs_review_not_a_refund(env: Env):
    await env.fault(MRC, mode="body", json=MAINTENANCE)
    await env.fault(MRCSTATUS, mode="body", json=MAINTENANCE)
    record = await env.request(amount=50)
    done = await env.saga(give_up_after=0.3).run(record.id, timeout=10)
    assert done.state is S.NEEDS_REVIEW and done.reason == "recharge_unknown"
    assert (await env.counts())[MRCSTATUS] == 1 and await env.recharges() == []


async def test_a_refusal_after_an_unknown_mrc_outcome_asks_mrcstatus_before_refunding(env: Env):
    await env.fault(MRC, mode="delay", seconds=SLOW, times=1)  # the MRC lands; we never see the answer
    # eCare does not show the refid yet, so the MRC goes again, and is refused (credentials).
    await env.fault(MRCSTATUS, mode="body", json={"RECHARGE_STATUS": "INVALIDREF", "MESSAGE": "x"}, times=1)
    await env.fault(MRC, mode="body", json={"STATUS": "INVALID", "MESSAGE": "Login Failed"}, times=1)
    record = await env.request(amount=50)
    await env.script(record.refid, ["SUCCESS"])
    done = await env.saga().run(record.id, timeout=10)
    await env.settle()
    assert len(await env.recharges()) == 1  # delivered
    # MRCSTATUS was asked before refunding: SUCCESS, or (still not shown) an operator decides.
    assert done.state in (S.COMPLETED, S.NEEDS_REVIEW), (done.state, done.reason, done.note)
    assert (await env.counts())[MRCSTATUS] >= 2


async def test_a_step_that_keeps_failing_with_a_bug_goes_to_review(env: Env):
    from server.recharge import RechargeWorker

    record = await env.request()
    saga = env.saga(max_step_errors=3)

    async def broken() -> None:
        raise RuntimeError("a bug")

    saga.ecare.balance = broken  # type: ignore[method-assign]
    worker = RechargeWorker(env.ledger, saga, worker_id="w", lease=10)
    for n in range(1, 3):
        await env.ledger.enqueue(record.id)
        assert await worker.run_once() == 1
        current = await env.ledger.get(record.id)
        assert current.state is S.REQUESTED and current.step_errors == n and "a bug" in current.note
    await env.ledger.enqueue(record.id)
    await worker.run_once()
    current = await env.ledger.get(record.id)
    assert current.state is S.NEEDS_REVIEW and current.reason == "step_error" and "RuntimeError" in current.note
    assert await env.counts() == {BLCK: 0, DEBIT: 0, MRC: 0, MRCSTATUS: 0}
