"""`alap worker`: the durable queue consumer as real processes (started, SIGKILLed, restarted,
racing each other, stopped with SIGTERM) and as in-process workers sharing one Redis, against
the sandbox fakes over real HTTP. Every test counts the calls the fakes received and the money
they moved."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from server.recharge import RechargeWorker
from server.store.ledger import RechargeRecord, RechargeState
from tests.conftest import APP_ID, PASSWORD
from tests.recharge.test_saga_failure_points import (  # noqa: F401  (env is the shared fixture)
    env,
    DEBIT, ECARE_ID, ECARE_PASS, MAINTENANCE, MRC, MRCSTATUS, PAYER, RECIPIENT, Env, tel, texts,
)

S = RechargeState


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class WorkerProcess:
    """`alap worker` as an operator runs it, pointed at the fakes and the test's Redis prefix."""

    def __init__(self, env: Env, redis_url: str, worker_id: str, log_dir: Path, **extra: str) -> None:
        self.worker_id = worker_id
        self.log_path = log_dir / f"{worker_id}-{time.time_ns()}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("BDAPPS_", "ALAP_", "ECARE_", "REDIS_URL",
                                                                           "DYNO"))}
        clean.update({
            "REDIS_URL": redis_url, "ALAP_REDIS_PREFIX": env.store.prefix,
            "BDAPPS_BASE_URL": env.bdapps_url, "BDAPPS_APP_ID": APP_ID, "BDAPPS_PASSWORD": PASSWORD,
            "ECARE_URL": env.ecare_url, "ECARE_ACCESS_ID": ECARE_ID, "ECARE_ACCESS_PASS": ECARE_PASS,
            "ALAP_SMS_ROUTES": "bdapps", "ALAP_SMS_RATE": "0", "ALAP_LOG_LEVEL": "warning",
            "ALAP_RECHARGE_HTTP_TIMEOUT": "0.5", "ALAP_RECHARGE_RETRY_DELAY": "0.05",
            "ALAP_RECHARGE_RETRY_MAX_DELAY": "0.2", "ALAP_RECHARGE_POLL_DELAY": "0.03",
            "ALAP_RECHARGE_POLL_MAX_DELAY": "0.1", "ALAP_WORKER_POLL_INTERVAL": "0.05", "ALAP_WORKER_LEASE": "10",
            "ALAP_WORKER_CONCURRENCY": "4",
        })
        clean.update(extra)
        self.env = clean
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> "WorkerProcess":
        with self.log_path.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", "worker", "--id", self.worker_id, env=self.env,
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        await wait_until(self._ready, 20, f"worker {self.worker_id} to start")
        return self

    async def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.output()}")
        return "recharge queue" in self.output()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def terminate(self, timeout: float = 40) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def cleanup(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
def workers(env: Env, redis_url: str, tmp_path: Path):
    started: list[WorkerProcess] = []

    async def start(worker_id: str, **extra: str) -> WorkerProcess:
        process = WorkerProcess(env, redis_url, worker_id, tmp_path, **extra)
        started.append(process)
        return await process.start()

    yield start
    for process in started:
        if process.proc is not None and process.proc.returncode is None:
            process.proc.kill()


async def final(env: Env, record_id: str, timeout: float = 15.0) -> RechargeRecord:
    async def done() -> RechargeRecord | None:
        record = await env.ledger.get(record_id)
        return record if record is not None and record.final and record.receipts_done else None

    return await wait_until(done, timeout, f"record {record_id} to be final")


async def in_state(env: Env, record_id: str, state: RechargeState) -> RechargeRecord:
    async def check() -> RechargeRecord | None:
        record = await env.ledger.get(record_id)
        return record if record is not None and record.state is state else None

    return await wait_until(check, 15, f"record {record_id} in {state.value}")


async def called(env: Env, endpoint: str, at_least: int = 1) -> int:
    return await wait_until(lambda: _at_least(env, endpoint, at_least), 15, f"{at_least} call(s) to {endpoint}")


async def _at_least(env: Env, endpoint: str, n: int) -> int:
    count = await env.calls(endpoint)
    return count if count >= n else 0


# --- real processes --------------------------------------------------------------------------------

async def test_worker_process_runs_the_queue_and_stops_cleanly_on_sigterm(env: Env, workers):
    worker = await workers("worker.1")
    records = [await env.request(amount=20 + i * 10, key=f"s{i}") for i in range(3)]
    done = [await final(env, r.id) for r in records]
    assert [d.state for d in done] == [S.COMPLETED] * 3
    assert {h.by for d in done for h in d.history[1:]} == {"worker.1"}
    counts = await env.counts()
    assert (counts[DEBIT], counts[MRC]) == (3, 3)
    assert sorted(d["amount"] for d in await env.debits()) == ["20", "30", "40"]
    assert len(await env.recharges()) == 3 and len(env.sms()) == 6
    assert await env.ledger.queued() == {}  # final and receipted: out of the queue
    assert await worker.terminate() == 0
    assert "alap worker worker.1: stopped" in worker.output() and "Traceback" not in worker.output()


async def test_worker_killed_between_debit_and_recharge_resumes_without_a_second_debit(env: Env, workers):
    await env.fault(MRC, mode="body", json=MAINTENANCE)  # the debit goes through, the recharge cannot
    worker = await workers("worker.1")
    record = await env.request(amount=50)
    await in_state(env, record.id, S.RECHARGING)
    mrc_before = await called(env, MRC)
    await worker.kill()  # SIGKILL: no clean-up of any kind
    stuck = await env.ledger.get(record.id)
    assert stuck.state is S.RECHARGING and stuck.caas_trx_id and len(await env.debits()) == 1
    await env.clear_faults()
    await workers("worker.1")  # the same worker id comes back
    done = await final(env, record.id)
    assert done.state is S.COMPLETED
    counts = await env.counts()
    assert counts[DEBIT] == 1 and len(await env.debits()) == 1  # never debited again
    assert counts[MRC] == mrc_before + 1 and len(await env.recharges()) == 1
    assert len(texts(env, PAYER)) == 1 and len(texts(env, tel(RECIPIENT))) == 1


async def test_worker_killed_during_the_debit_call_asks_again_with_the_same_id(env: Env, workers):
    await env.fault(DEBIT, mode="delay", seconds=1.0, times=1)  # the fake completes it after we die
    worker = await workers("worker.a", ALAP_RECHARGE_HTTP_TIMEOUT="0.5", ALAP_WORKER_LEASE="1.5")
    record = await env.request(amount=50)
    await called(env, DEBIT)
    await worker.kill()
    assert (await env.ledger.get(record.id)).state is S.DEBITING
    # Another worker (another id): it waits for worker.a's lease to run out, then takes over.
    started = time.monotonic()
    await workers("worker.b", ALAP_RECHARGE_HTTP_TIMEOUT="0.5", ALAP_WORKER_LEASE="1.5")
    done = await final(env, record.id)
    assert done.state is S.COMPLETED and time.monotonic() - started >= 0.5
    assert (await env.counts())[DEBIT] == 2  # the killed call and the same call again
    [debit] = await env.debits()  # one charge
    assert debit["externalTrxId"] == record.external_trx_id
    assert len(await env.recharges()) == 1 and len(texts(env, PAYER)) == 1
    assert [h.by for h in done.history if h.state is S.DEBITED] == ["worker.b"]


async def test_worker_killed_during_the_recharge_call_resolves_it_by_mrcstatus(env: Env, workers):
    await env.fault(MRC, mode="delay", seconds=0.8, times=1)
    worker = await workers("worker.1", ALAP_RECHARGE_HTTP_TIMEOUT="3")
    record = await env.request(amount=50)
    await called(env, MRC)
    await worker.kill()
    await wait_until(env.recharges, 5, "the held MRC to land at eCare")
    stuck = await env.ledger.get(record.id)
    assert stuck.state is S.RECHARGING and stuck.recharge_maybe_sent  # written before the call
    await workers("worker.1")
    done = await final(env, record.id)
    assert done.state is S.COMPLETED
    counts = await env.counts()
    assert (counts[DEBIT], counts[MRC]) == (1, 1)  # MRCSTATUS found it: no second MRC
    assert counts[MRCSTATUS] >= 1 and len(await env.recharges()) == 1 and len(await env.debits()) == 1
    assert any("an earlier MRC landed" in h.note for h in done.history)


async def test_two_worker_processes_race_without_working_one_record_twice(env: Env, workers):
    await env.fault(DEBIT, mode="delay", seconds=0.15)  # keep steps in flight so both workers work
    await env.balance(PAYER, "1000.00")
    await asyncio.gather(workers("worker.1", ALAP_WORKER_CONCURRENCY="2"),
                         workers("worker.2", ALAP_WORKER_CONCURRENCY="2"))
    records = [await env.request(amount=10 + i, key=f"race-{i}") for i in range(8)]
    done = [await final(env, r.id, 30) for r in records]
    assert all(d.state is S.COMPLETED for d in done)
    counts = await env.counts()
    assert (counts[DEBIT], counts[MRC]) == (8, 8)  # exactly one debit call and one MRC per record
    assert sorted(d["externalTrxId"] for d in await env.debits()) == sorted(r.external_trx_id for r in records)
    assert sorted(r["refid"] for r in await env.recharges()) == sorted(r.refid for r in records)
    assert len(env.sms()) == 16
    assert {h.by for d in done for h in d.history[1:]} == {"worker.1", "worker.2"}


async def test_sigterm_lets_the_step_in_flight_finish(env: Env, workers):
    await env.fault(DEBIT, mode="delay", seconds=0.8, times=1)
    worker = await workers("worker.1", ALAP_RECHARGE_HTTP_TIMEOUT="3")
    record = await env.request(amount=50)
    await called(env, DEBIT)
    assert await worker.terminate() == 0
    after = await env.ledger.get(record.id)
    assert after.state is not S.DEBITING and after.caas_trx_id  # the debit's answer was written
    await workers("worker.2")
    done = await final(env, record.id)
    assert done.state is S.COMPLETED and (await env.counts())[DEBIT] == 1 and len(await env.debits()) == 1


async def test_worker_refuses_to_start_without_redis_or_credentials(tmp_path):
    base = [sys.executable, "-m", "server", "worker"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BDAPPS_", "ALAP_", "ECARE_", "REDIS_URL"))}
    no_redis = await asyncio.create_subprocess_exec(*base, env=clean, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    out, err = await no_redis.communicate()
    assert no_redis.returncode == 2 and out == b""
    assert err.decode().strip() == ("alap: REDIS_URL is required by `alap worker` (the recharge ledger and its "
                                    "queue live in Redis)")
    no_ecare = await asyncio.create_subprocess_exec(*base, env={**clean, "REDIS_URL": "redis://127.0.0.1:1/0",
                                                                "BDAPPS_APP_ID": "A", "BDAPPS_PASSWORD": "p"},
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await no_ecare.communicate()
    assert no_ecare.returncode == 2 and err.decode().startswith("alap: ECARE_ACCESS_ID is required")
    short_lease = await asyncio.create_subprocess_exec(
        *base, env={**clean, "REDIS_URL": "redis://127.0.0.1:1/0", "BDAPPS_APP_ID": "A", "BDAPPS_PASSWORD": "p",
                    "ECARE_ACCESS_ID": "e", "ECARE_ACCESS_PASS": "p", "ALAP_WORKER_LEASE": "20"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await short_lease.communicate()
    assert short_lease.returncode == 2
    assert err.decode().strip() == "alap: ALAP_WORKER_LEASE must be at least 3 x ALAP_RECHARGE_HTTP_TIMEOUT (30 s), got 20"


# --- in-process workers on one Redis ---------------------------------------------------------------

async def _run_workers(env: Env, ids: list[str], until: Callable[[], Awaitable[bool]], **options: Any) -> list[RechargeWorker]:
    stop = asyncio.Event()
    pool = [RechargeWorker(env.ledger, env.saga(worker_id=wid), worker_id=wid, poll_interval=0.02, **options)
            for wid in ids]
    tasks = [asyncio.create_task(w.run(stop)) for w in pool]
    try:
        await wait_until(until, 30, "the workers to finish")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return pool


async def test_two_in_process_workers_share_the_queue_and_never_double_work(env: Env):
    await env.fault(MRC, mode="delay", seconds=0.05)
    await env.balance(PAYER, "1000.00")
    records = [await env.request(amount=10 + i, key=f"k{i}") for i in range(20)]

    async def all_final() -> bool:
        return all([(await env.ledger.get(r.id)).receipts_done for r in records])

    pool = await _run_workers(env, ["w1", "w2"], all_final, concurrency=5, lease=10)
    done = [await env.ledger.get(r.id) for r in records]
    assert all(d.state is S.COMPLETED for d in done)
    counts = await env.counts()
    assert (counts[DEBIT], counts[MRC]) == (20, 20)
    assert len(await env.debits()) == 20 and len(await env.recharges()) == 20 and len(env.sms()) == 40
    assert all(w.steps > 0 for w in pool)
    assert {h.by for d in done for h in d.history[1:]} == {"w1", "w2"}
    assert await env.ledger.queued() == {}


async def test_worker_resumes_a_record_that_was_never_enqueued(env: Env):
    record = await env.request(enqueue=False)  # the action died between create() and enqueue()

    async def finished() -> bool:
        return (await env.ledger.get(record.id)).receipts_done

    await _run_workers(env, ["w1"], finished)
    assert (await env.ledger.get(record.id)).state is S.COMPLETED
    assert (await env.counts())[DEBIT] == 1


async def test_a_lost_lease_stops_the_step_before_its_money_call(env: Env):
    record = await env.request()
    [lease] = await env.ledger.claim("slow", lease=0.1)
    await asyncio.sleep(0.2)  # "slow" stalled past its lease ...
    [taken] = await env.ledger.claim("fast", lease=10)  # ... and "fast" took the record
    from server.recharge import RechargeLeaseKeeper, LeaseLost

    with pytest.raises(LeaseLost):
        await env.saga().step(record.id, RechargeLeaseKeeper(env.ledger, lease, 10))
    assert (await env.counts())[DEBIT] == 0  # the stale worker sent nothing
    result = await env.saga().step(record.id, RechargeLeaseKeeper(env.ledger, taken, 10))
    assert result.record.state is S.SUBMITTED and (await env.counts())[DEBIT] == 1
