"""Review of the recharge money path: failing tests for defects found (one test per defect).

Same harness as test_saga_failure_points.py: the sandbox fakes over real HTTP, a real Redis ledger.
A "crash" is simulated the way test_ecare_duplicate_means_already_submitted... does it: the
ledger writes a worker makes before a call, then the call itself, and no write after it.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import AsyncIterator

import pytest

from server.recharge import RechargeLeaseKeeper, LeaseLost
from server.store.ledger import RechargeRecord, RechargeState
from tests.conftest import redis_test_store
from tests.recharge.test_saga_failure_points import (  # noqa: F401  (env is the shared fixture)
    env, debited_and_recharged_but_unrecorded,
    DEBIT, MAINTENANCE, MRC, PAYER, Env, body, start_env, texts,
)

S = RechargeState


@pytest.fixture
async def slow_env(aiohttp_server, redis_url: str) -> AsyncIterator[Env]:
    """Clients that wait 3 s for an answer (a delay fault is then a slow call, not a timeout)."""
    async with redis_test_store(redis_url) as store:
        e = await start_env(aiohttp_server, store, timeout=3.0)
        try:
            yield e
        finally:
            await e.aclose()


async def _worker_died_after_the_debit(env: Env, amount: int = 50) -> RechargeRecord:
    """A worker wrote DEBITING and its attempt, CAAS charged the subscriber, and the worker was
    SIGKILLed (or the step cancelled by the SIGTERM drain) before it wrote the answer."""
    record = await env.request(amount=amount)
    await env.ledger.transition(record.id, S.REQUESTED, S.DEBITING, "wallet ok", by="dead-worker")
    await env.ledger.update(record.id, S.DEBITING, attempts=1, next_at=None)
    await env.caas.direct_debit(PAYER, Decimal(amount), record.external_trx_id)
    assert len(await env.debits()) == 1  # the subscriber's money is taken
    return record


# --- 1. DEBITING: a debit whose answer was never recorded is forgotten on give-up / refusal -------------

async def test_debit_charged_before_a_crash_then_throttled_past_give_up_is_not_told_not_charged(env: Env):
    record = await _worker_died_after_the_debit(env)
    # The next worker finds CAAS throttling (E1318: "nothing charged by THIS call") until give-up.
    await env.fault(DEBIT, **body(statusCode="E1318", statusDetail="Transaction limit per second"))
    await asyncio.sleep(0.3)
    done = await env.saga(give_up_after=0.2).run(record.id, timeout=10)
    assert len(await env.debits()) == 1  # charged ...
    # ... so the record must not claim nothing was taken: the first call's outcome is unknown.
    assert done.state is not S.FAILED_NOT_CHARGED, (done.state, done.reason, done.note)
    assert done.state is S.NEEDS_REVIEW
    assert not any("No money was taken" in t for t in texts(env, PAYER))


async def test_debit_charged_before_a_crash_then_refused_e1313_is_not_told_not_charged(env: Env):
    record = await _worker_died_after_the_debit(env)
    # The retry is refused outright (credentials rotated, IP not provisioned yet...): this says
    # nothing about the first call, which was charged.
    await env.fault(DEBIT, **body(statusCode="E1313", statusDetail="Authentication failed."))
    done = await env.saga().run(record.id, timeout=10)
    assert len(await env.debits()) == 1
    assert done.state is not S.FAILED_NOT_CHARGED, (done.state, done.reason, done.note)
    assert not any("No money was taken" in t for t in texts(env, PAYER))


# --- 2. CAAS E1601 "System experienced an unexpected error" is read as "not charged" -----------------

async def test_debit_e1601_unexpected_system_error_is_not_concluded_not_charged(env: Env):
    # E1601 says the gateway failed unexpectedly while handling the debit: the charge may or may
    # not have been applied. It is asked again under the same id (like E1602/E1603), never
    # concluded "not charged" from this one answer.
    await env.fault(DEBIT, **body(statusCode="E1601", statusDetail="System experienced an unexpected error."),
                    times=1)
    record = await env.request()
    done = await env.saga().run(record.id, timeout=10)
    assert done.state is not S.FAILED_NOT_CHARGED, (done.state, done.reason, done.note)
    assert (await env.counts())[DEBIT] >= 2  # the same externalTrxId asked again


# --- 3. lease expiry during a slow call: the stale worker's answer is still written ----------------------

async def test_a_worker_whose_lease_ran_out_mid_call_cannot_overwrite_the_new_owners_debit(slow_env: Env):
    env = slow_env
    await env.balance(PAYER, "0.00")
    record = await env.request(amount=50)
    await env.ledger.transition(record.id, S.REQUESTED, S.DEBITING, "wallet ok", by="setup")
    # A's debit is answered after 0.6 s, B's (same externalTrxId) after 1.2 s.
    await env.fault(DEBIT, mode="delay", seconds=0.6, times=1)
    await env.fault(DEBIT, mode="delay", seconds=1.2, times=1)

    [lease_a] = await env.ledger.claim("A", lease=0.25)
    task_a = asyncio.create_task(env.saga(worker_id="A").step(record.id, RechargeLeaseKeeper(env.ledger, lease_a, 0.25)))
    await asyncio.sleep(0.35)  # A's call outlives its lease (GC pause, stalled loop, slow upstream...)
    [lease_b] = await env.ledger.claim("B", lease=10)  # ... and B takes the record, as designed
    task_b = asyncio.create_task(env.saga(worker_id="B").step(record.id, RechargeLeaseKeeper(env.ledger, lease_b, 10)))
    # A's call is answered E1308 (no balance at that moment) and A, no longer the owner, writes it.
    result_a = await asyncio.gather(task_a, return_exceptions=True)
    await env.balance(PAYER, "100.00")  # the subscriber tops up; B's identical call is then charged
    await asyncio.gather(task_b, return_exceptions=True)
    await asyncio.sleep(0.2)

    done = await env.ledger.get(record.id)
    debits = await env.debits()
    assert len(debits) == 1  # the money is taken (by B's call)
    # A lost its lease: it must write nothing (LeaseLost), and the charge must be on the record.
    assert isinstance(result_a[0], LeaseLost) or done.state is not S.FAILED_NOT_CHARGED, (
        done.state, done.reason, [(h.state.value, h.by, h.note) for h in done.history])
    assert done.state is not S.FAILED_NOT_CHARGED
    assert not any("No money was taken" in t for t in texts(env, PAYER))


# --- 4. RECHARGING: give-up after maintenance refunds a recharge that landed -------------------------

async def test_mrc_landed_but_its_marks_were_lost_then_maintenance_does_not_refund_a_delivered_recharge(env: Env):
    # docs/recharge.md, persistence: "lost recharge_maybe_sent or SUBMITTED ... the MRC goes
    # again under the same refid; eCare answers DUPLICATE". While eCare is in maintenance it
    # never answers DUPLICATE, and the give-up refunds a recharge eCare delivered.
    record = await env.request(amount=50)
    await debited_and_recharged_but_unrecorded(env, record)
    await env.script(record.refid, ["SUCCESS"])
    await env.fault(MRC, mode="body", json=MAINTENANCE)  # MRC only: MRCSTATUS still answers
    done = await env.saga(give_up_after=0.3).run(record.id, timeout=10)
    [recharge] = await env.recharges()
    assert recharge["refid"] == record.refid  # delivered to the recipient
    assert done.state is not S.REFUND_REQUIRED, (done.state, done.reason, done.note)
