"""The recharge ledger on both backends (memory and a real Redis): records, idempotent create,
compare-and-set transitions with history, the queue with leases, resume, the operator's
resolve and `alap ledger` as a real process."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import msgspec
import pytest

from server.store import MemoryStore, Store
from server.store.ledger import (
    FINAL_STATES,
    Ledger,
    MemoryLedger,
    RechargeState,
    RedisLedger,
    StateConflict,
    new_record,
    open_ledger,
)
from server.store.redis_backend import RedisStore

S = RechargeState


def make(key: str = "sess-1:confirm", **extra) -> "msgspec.Struct":
    values = dict(idempotency_key=key, payer="tel:8801812345678", payer_msisdn="01812345678",
                  recipient="01712345678", operator="GRAMEENPHONE", number_type="PREPAID", amount=Decimal("50"),
                  language="bn")
    values.update(extra)
    return new_record(**values)


@pytest.fixture
def ledger(store: Store) -> Ledger:
    return open_ledger(store)


def test_new_record_generates_both_money_keys_before_any_call():
    record = make()
    assert record.state is S.REQUESTED and record.amount == "50"
    assert record.external_trx_id.isdigit() and len(record.external_trx_id) <= 32
    assert record.refid.isdigit() and len(record.refid) == 19 and int(record.refid) < 2 ** 63
    assert record.external_trx_id != record.refid
    assert [h.state for h in record.history] == [S.REQUESTED] and record.history[0].at == record.created_at
    assert len({make().refid for _ in range(200)}) == 200


@pytest.mark.parametrize("bad", [
    dict(amount=Decimal("50.5")), dict(amount=0), dict(amount=-5), dict(amount="abc"),
    dict(recipient="8801712345678"), dict(recipient="0171234567"), dict(payer_msisdn="tel:880"),
    dict(idempotency_key=" "), dict(payer=""), dict(operator=""),
])
def test_new_record_refuses_what_cannot_be_recharged(bad):
    with pytest.raises(ValueError):
        make(**bad)
    with pytest.raises(TypeError):
        make(amount=50.0)


async def test_create_is_idempotent_on_the_key(ledger: Ledger):
    first, created = await ledger.create(make())
    again, created_again = await ledger.create(make(amount=Decimal("99")))  # a second confirmation
    assert created and not created_again
    assert again.id == first.id and again.amount == "50" and again.refid == first.refid
    assert (await ledger.find("sess-1:confirm")).id == first.id
    assert await ledger.find("other") is None
    assert [r.id for r in await ledger.list()] == [first.id]


async def test_concurrent_creates_with_one_key_make_one_record(ledger: Ledger):
    results = await asyncio.gather(*(ledger.create(make()) for _ in range(20)))
    assert sum(created for _, created in results) == 1
    assert len({r.id for r, _ in results}) == 1
    assert len(await ledger.list()) == 1


async def test_transition_is_compare_and_set_with_timestamped_history(ledger: Ledger):
    record, _ = await ledger.create(make())
    debiting = await ledger.transition(record.id, S.REQUESTED, S.DEBITING, "debit", by="w1", attempts=0)
    assert debiting.state is S.DEBITING and debiting.version == record.version + 1
    assert [(h.state, h.note, h.by) for h in debiting.history] == [
        (S.REQUESTED, "requested", "action"), (S.DEBITING, "debit", "w1")]
    assert debiting.history[-1].at >= record.created_at
    with pytest.raises(StateConflict) as info:
        await ledger.transition(record.id, S.REQUESTED, S.DEBITING)
    assert info.value.actual is S.DEBITING
    with pytest.raises(StateConflict):
        await ledger.transition("nope", S.REQUESTED, S.DEBITING)
    updated = await ledger.update(record.id, {S.DEBITING, S.DEBITED}, attempts=3, debit_unknown=1)
    assert updated.attempts == 3 and len(updated.history) == 2  # update(): no history entry
    with pytest.raises(TypeError):
        await ledger.update(record.id, S.DEBITING, refid="123")  # money keys are never rewritten
    with pytest.raises(TypeError):
        await ledger.update(record.id, S.DEBITING, colour="red")
    stored = await ledger.get(record.id)
    assert stored == updated


async def test_racing_transitions_only_one_wins(ledger: Ledger):
    record, _ = await ledger.create(make())
    outcomes = await asyncio.gather(*(ledger.transition(record.id, S.REQUESTED, S.DEBITING, f"w{i}")
                                      for i in range(10)), return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, StateConflict) for o in outcomes if isinstance(o, Exception))
    assert len((await ledger.get(record.id)).history) == 2


async def test_list_by_state_and_counts(ledger: Ledger):
    ids = []
    for i in range(5):
        record, _ = await ledger.create(make(f"k{i}"))
        ids.append(record.id)
        await asyncio.sleep(0.002)
    await ledger.transition(ids[1], S.REQUESTED, S.FAILED_NOT_CHARGED, "wallet low", reason="wallet_low")
    await ledger.transition(ids[3], S.REQUESTED, S.DEBITING)
    assert [r.id for r in await ledger.list()] == ids[::-1]
    assert [r.id for r in await ledger.list(S.REQUESTED)] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in await ledger.list(S.REQUESTED, limit=1)] == [ids[4]]
    assert [r.id for r in await ledger.list(S.FAILED_NOT_CHARGED)] == [ids[1]]
    counts = await ledger.counts()
    assert counts[S.REQUESTED] == 3 and counts[S.DEBITING] == 1 and counts[S.FAILED_NOT_CHARGED] == 1
    assert sum(counts.values()) == 5


async def test_queue_claims_due_records_under_a_lease(ledger: Ledger):
    a, _ = await ledger.create(make("a"), enqueue=True)
    b, _ = await ledger.create(make("b"))
    await ledger.enqueue(b.id, time.time() + 60)  # not due yet
    first = await ledger.claim("w1", limit=5, lease=30)
    assert [lease.record_id for lease in first] == [a.id] and first[0].worker_id == "w1"
    assert await ledger.claim("w2", limit=5, lease=30) == []  # leased: nobody else gets it
    await ledger.enqueue(a.id)  # an enqueue during the lease does not hand it out twice
    assert await ledger.claim("w2", limit=5, lease=30) == []
    renewed = await ledger.renew(first[0], 30)
    assert renewed is not None and renewed.expires_at >= first[0].expires_at
    assert await ledger.release(first[0], time.time() - 1)  # give it back, due now
    again = await ledger.claim("w2", limit=5, lease=30)
    assert [lease.record_id for lease in again] == [a.id]
    assert not await ledger.release(first[0], None)  # w1's lease is gone: changes nothing
    assert await ledger.renew(first[0], 30) is None
    assert await ledger.release(again[0], None)  # done: out of the queue
    assert a.id not in await ledger.queued() and b.id in await ledger.queued()


async def test_an_expired_lease_lets_another_worker_take_the_record(ledger: Ledger):
    record, _ = await ledger.create(make(), enqueue=True)
    [lease] = await ledger.claim("crashed", lease=0.2)
    assert await ledger.claim("w2", lease=5) == []
    await asyncio.sleep(0.3)
    [taken] = await ledger.claim("w2", lease=5)
    assert taken.record_id == record.id
    assert await ledger.renew(lease, 5) is None and not await ledger.release(lease, None)


async def test_resume_breaks_own_leases_and_queues_lost_records(ledger: Ledger):
    queued, _ = await ledger.create(make("q"), enqueue=True)
    lost, _ = await ledger.create(make("lost"))  # created, then the process died before enqueue()
    done, _ = await ledger.create(make("done"))
    await ledger.transition(done.id, S.REQUESTED, S.FAILED_NOT_CHARGED, receipts_done=True)
    [held] = await ledger.claim("worker.1", lease=600)
    assert held.record_id == queued.id
    assert await ledger.resume() == 1  # the lost record only
    assert lost.id in await ledger.queued() and done.id not in await ledger.queued()
    assert [lease.record_id for lease in await ledger.claim("worker.2", limit=5)] == [lost.id]
    # worker.1 restarts: its earlier process is gone, so its leases are dropped at once.
    assert await ledger.resume("worker.1") == 1
    assert [lease.record_id for lease in await ledger.claim("worker.1", limit=5)] == [queued.id]


async def test_resolve_moves_attention_states_to_resolved(ledger: Ledger):
    record, _ = await ledger.create(make())
    await ledger.transition(record.id, S.REQUESTED, S.DEBITING)
    await ledger.transition(record.id, S.DEBITING, S.DEBITED)
    await ledger.transition(record.id, S.DEBITED, S.REFUND_REQUIRED, "MRC FAILED", reason="rejected")
    with pytest.raises(ValueError):
        await ledger.resolve(record.id, " ")
    resolved = await ledger.resolve(record.id, "refunded via BDApps ticket 42", by="operator:rina")
    assert resolved.state is S.RESOLVED and resolved.final and S.RESOLVED in FINAL_STATES
    assert (resolved.history[-1].state, resolved.history[-1].note, resolved.history[-1].by) == (
        S.RESOLVED, "refunded via BDApps ticket 42", "operator:rina")
    with pytest.raises(StateConflict):
        await ledger.resolve(record.id, "again")


def test_open_ledger_follows_the_store():
    memory = MemoryStore()
    assert isinstance(open_ledger(memory), MemoryLedger)
    assert open_ledger(memory) is open_ledger(memory)  # the action and an in-process worker share it
    assert open_ledger(MemoryStore()) is not open_ledger(memory)


async def test_redis_ledger_keys_sit_next_to_the_store_and_never_expire(redis_store: RedisStore):
    ledger = open_ledger(redis_store)
    assert isinstance(ledger, RedisLedger)
    record, _ = await ledger.create(make(), enqueue=True)
    keys = sorted(k.decode() for k in await redis_store.redis.keys(f"{redis_store.prefix}*"))
    assert all(k.startswith(f"{redis_store.prefix}{{ledger}}:") for k in keys)
    assert f"{redis_store.prefix}{{ledger}}:r:{record.id}" in keys
    assert [await redis_store.redis.ttl(k) for k in keys] == [-1] * len(keys)


# --- `alap ledger` as an operator runs it ---------------------------------------------------------

def _alap(*args: str, redis_url: str, prefix: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL"))}
    env.update(REDIS_URL=redis_url, ALAP_REDIS_PREFIX=prefix)
    return subprocess.run([sys.executable, "-m", "server", "ledger", *args], capture_output=True, text=True,
                          timeout=30, env=env)


async def test_alap_ledger_lists_shows_and_resolves(redis_store: RedisStore, redis_url: str):
    ledger = open_ledger(redis_store)
    ok, _ = await ledger.create(make("ok"))
    bad, _ = await ledger.create(make("bad", amount=Decimal("200"), recipient="01912345678"))
    await ledger.transition(bad.id, S.REQUESTED, S.DEBITING, "debit", by="worker.1")
    await ledger.transition(bad.id, S.DEBITING, S.DEBITED, "debited", by="worker.1", caas_trx_id="913080108430074")
    await ledger.transition(bad.id, S.DEBITED, S.REFUND_REQUIRED, "MRCSTATUS FAILED, TRXID MTS1",
                            by="worker.1", reason="recharge_failed", ecare_trx_id="MTS1")
    run = lambda *a: asyncio.to_thread(_alap, *a, redis_url=redis_url, prefix=redis_store.prefix)

    listed = await run()
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATE", "CREATED"]
    assert any(bad.id in line and "REFUND_REQUIRED" in line and "200" in line for line in lines)
    assert "2 record(s): REQUESTED 1  REFUND_REQUIRED 1" in listed.stdout
    assert "1 need an operator" in listed.stdout

    only = await run("--state", "refund_required")
    assert bad.id in only.stdout and ok.id not in only.stdout

    shown = await run("show", bad.id)
    assert shown.returncode == 0
    assert "externalTrxId" in shown.stdout and bad.external_trx_id in shown.stdout and bad.refid in shown.stdout
    assert "ACTION: refund Tk 200" in shown.stdout
    history = shown.stdout.split("History\n", 1)[1].splitlines()
    assert [row.split()[2] for row in history[2:]] == ["REQUESTED", "DEBITING", "DEBITED", "REFUND_REQUIRED"]

    refused = await run("resolve", bad.id)
    assert refused.returncode == 1 and "--note is required" in refused.stderr
    wrong = await run("resolve", ok.id, "--note", "x")
    assert wrong.returncode == 1 and "only REFUND_REQUIRED or NEEDS_REVIEW" in wrong.stderr
    resolved = await run("resolve", bad.id, "--note", "refunded via BDApps ticket 77", "--by", "rina")
    assert resolved.returncode == 0 and "REFUND_REQUIRED -> RESOLVED" in resolved.stdout
    record = await ledger.get(bad.id)
    assert record.state is S.RESOLVED and record.history[-1].by == "operator:rina"

    as_json = json.loads((await run("show", bad.id, "--json")).stdout)
    assert as_json["state"] == "RESOLVED" and as_json["history"][-1]["note"] == "refunded via BDApps ticket 77"
    missing = await run("show", "nope")
    assert missing.returncode == 1 and "no recharge 'nope'" in missing.stderr
    unknown = await run("--state", "LOST")
    assert unknown.returncode == 1 and "unknown state" in unknown.stderr


def test_money_keys_made_in_one_process_never_repeat_even_in_the_same_millisecond():
    from server.store.ledger.records import _numeric_key

    keys = [_numeric_key() for _ in range(20_000)]  # thousands a millisecond
    assert len(set(keys)) == len(keys)


def test_a_forked_worker_draws_money_keys_of_its_own():
    import multiprocessing

    from server.store.ledger.records import _numeric_key

    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        child = pool.apply(_numeric_key)
    parent = _numeric_key()
    assert child[13:] != parent[13:]  # not the master's sequence, continued in both processes
