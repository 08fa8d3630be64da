"""Property: whatever sequence of upstream faults a recharge meets, money is conserved.

    sum debited (the CAAS fake's applied debits)
      == sum recharged (the eCare fake's SUCCESS recharges) + sum of REFUND_REQUIRED records

and each record's final state tells the truth about its own money (COMPLETED: debited once and
recharged once; FAILED_NOT_CHARGED: no debit, no recharge; REFUND_REQUIRED: debited once, not
recharged). The saga runs in-process against both fakes over real HTTP on loopback, with the
memory ledger, records one after the other (so each record's faults are its own).

The fault sequences stay consistent with the fakes' contract: a debit or MRC held past the
client's timeout lands later (the fakes complete it), so a sequence with such a timeout never
then injects a refusal that the idempotent fake could not give for that key. Unknown outcomes
stay below the saga's bound, so no record ends in NEEDS_REVIEW here (that bound has its own
tests in test_saga_failure_points.py).
"""
from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from server.integrations.base import Timeouts
from server.integrations.caas import CaasClient
from server.integrations.ecare import ECareClient
from server.messaging import build_sms_sender
from server.recharge import RechargeSaga, SagaPolicy
from server.sandbox.bdapps import create_bdapps_fake, sent_sms
from server.sandbox.ecare import ECARE_PATH, create_ecare_fake
from server.sandbox.faults import FAULTS_KEY, Fault
from server.store import MemoryStore
from server.store.ledger import RechargeState, new_record, open_ledger
from tests.conftest import APP_ID, PASSWORD
from tests.conftest import test_settings as make_settings
from tests.recharge.test_saga_failure_points import (
    BLCK, DEBIT, ECARE_ID, ECARE_PASS, MAINTENANCE, MRC, MRCSTATUS, PAYER, PAYER_MSISDN, RECIPIENT, renderer,
)

# Hypothesis keeps a cache in ./.hypothesis; this test needs none (database=None below), so
# it goes to a temporary directory rather than into the working tree.
_HYPOTHESIS_DIR = tempfile.mkdtemp(prefix="alap-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_DIR)
atexit.register(shutil.rmtree, _HYPOTHESIS_DIR, ignore_errors=True)

S = RechargeState
TIMEOUT = 0.08  # the clients' read timeout
HELD = 0.12  # a delay fault: longer than TIMEOUT, the fake completes the call afterwards
POLICY = SagaPolicy(retry_delay=0.01, retry_max_delay=0.03, poll_delay=0.005, poll_max_delay=0.02,
                    poll_timeout=30.0, give_up_after=30.0, max_unknown=8, jitter=0.0)


def _body(**answer: str) -> dict[str, Any]:
    return {"mode": "body", "json": answer}


TRANSIENT_DEBIT = {
    "held": {"mode": "delay", "seconds": HELD},  # timeout; the debit lands later
    "malformed": {"mode": "malformed"},  # unknown outcome; nothing applied
    "throttled": _body(statusCode="E1318", statusDetail="Transaction limit per second has exceeded."),
    "temporary": _body(statusCode="E1603", statusDetail="Temporary System Error occurred."),
    "http500": {"mode": "status", "status": 500},
}
TRANSIENT_MRC = {
    "held": {"mode": "delay", "seconds": HELD},  # timeout; the MRC lands later
    "malformed": {"mode": "malformed"},
    "maintenance": {"mode": "body", "json": MAINTENANCE},
    "http500": {"mode": "status", "status": 500},
}
FINAL_MRC = {
    "failed": _body(STATUS="FAILED", RECHARGE_STATUS="FAILED", MESSAGE="Recharge Request Failed."),
    "reject": _body(STATUS="FAILED", RECHARGE_STATUS="REJECT", MESSAGE="Sorry! Invalid Credentials."),
    "lowbalance": _body(STATUS="FAILED", RECHARGE_STATUS="LOWBALANCE", MESSAGE="Insufficient Wallet Balance"),
}
TRANSIENT_STATUS = {
    "held": {"mode": "delay", "seconds": HELD},
    "malformed": {"mode": "malformed"},
    "maintenance": {"mode": "body", "json": MAINTENANCE},
}


@dataclass
class Scenario:
    amount: int
    wallet: str  # ok | maintenance | low
    debit_transients: list[str]
    debit_final: str  # ok | declined | insufficient
    mrc_transients: list[str]
    mrc_final: str  # ok | failed | reject | lowbalance
    statuses: list[str]  # what MRCSTATUS reports, one per poll
    status_transients: list[str] = field(default_factory=list)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    debit_transients = draw(st.lists(st.sampled_from(sorted(TRANSIENT_DEBIT)), max_size=3))
    mrc_transients = draw(st.lists(st.sampled_from(sorted(TRANSIENT_MRC)), max_size=3))
    debit_final = draw(st.sampled_from(["ok", "ok", "ok", "declined", "insufficient"]))
    if "held" in debit_transients and debit_final == "insufficient":
        debit_final = "ok"  # the held debit lands: an idempotent CAAS cannot refuse that id later
    mrc_final = draw(st.sampled_from(["ok", "ok", "ok", "failed", "reject", "lowbalance"]))
    if "held" in mrc_transients:
        mrc_final = "ok"  # the held MRC lands: a resubmission can only meet DUPLICATE
    waiting = draw(st.lists(st.sampled_from(["PENDING", "PROCESSING"]), max_size=3))
    return Scenario(
        amount=draw(st.integers(10, 60)),
        wallet=draw(st.sampled_from(["ok", "ok", "ok", "maintenance", "low"])),
        debit_transients=debit_transients, debit_final=debit_final,
        mrc_transients=mrc_transients, mrc_final=mrc_final,
        statuses=waiting + [draw(st.sampled_from(["SUCCESS", "SUCCESS", "FAILED"]))],
        status_transients=draw(st.lists(st.sampled_from(sorted(TRANSIENT_STATUS)), max_size=2)),
    )


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def _json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        return await resp.json()


async def run_example(cases: list[Scenario]) -> None:
    bdapps = create_bdapps_fake("http://127.0.0.1:9/unset", APP_ID, PASSWORD)
    ecare_app = create_ecare_fake(ECARE_ID, ECARE_PASS)
    runners = []
    http = aiohttp.ClientSession()
    try:
        for app in (bdapps, ecare_app):
            runners.append(await _serve(app))
        (_, bdapps_url), (_, ecare_root) = runners
        timeouts = Timeouts(connect=0.5, read=TIMEOUT, write=0.5, pool=0.5)
        store = MemoryStore()
        ledger = open_ledger(store)
        caas = CaasClient(bdapps_url, APP_ID, PASSWORD, timeouts=timeouts)
        ecare = ECareClient(ecare_root + ECARE_PATH, ECARE_ID, ECARE_PASS, timeouts=timeouts)
        sender = build_sms_sender(make_settings(bdapps_base_url=bdapps_url, sms_routes="bdapps", sms_rate=0.0),
                                  http, store)
        saga = RechargeSaga(ledger, caas, ecare, sender, renderer(), POLICY, worker_id="prop")
        caas_faults, ecare_faults = bdapps[FAULTS_KEY], ecare_app[FAULTS_KEY]
        ids = []
        for n, case in enumerate(cases):
            balance = "0.00" if case.debit_final == "declined" else "10000.00"
            async with http.post(f"{bdapps_url}/_control/caas/balance",
                                 json={"subscriberId": PAYER, "balance": balance}) as resp:
                assert resp.status == 200
            record, _ = await ledger.create(new_record(
                idempotency_key=f"case-{n}", payer=PAYER, payer_msisdn=PAYER_MSISDN, recipient=RECIPIENT,
                operator="GRAMEENPHONE", number_type="PREPAID", amount=Decimal(case.amount), language="en"))
            ids.append(record.id)
            async with http.post(f"{ecare_root}/_control/ecare/script",
                                 json={"refid": record.refid, "statuses": case.statuses}) as resp:
                assert resp.status == 200
            if case.wallet == "maintenance":
                ecare_faults.add(Fault(endpoint=BLCK, times=1, mode="body", json=MAINTENANCE))
            elif case.wallet == "low":
                ecare_faults.add(Fault(endpoint=BLCK, times=1, mode="body",
                                       json={"STATUS": "OK", "MAIN_BALANCE": "5.00", "MESSAGE": "ok"}))
            for name in case.debit_transients:
                caas_faults.add(Fault(endpoint=DEBIT, times=1, **TRANSIENT_DEBIT[name]))
            if case.debit_final == "insufficient":
                caas_faults.add(Fault(endpoint=DEBIT, times=1,
                                      **_body(statusCode="E1326", statusDetail="Insufficient balance.")))
            for name in case.mrc_transients:
                ecare_faults.add(Fault(endpoint=MRC, times=1, **TRANSIENT_MRC[name]))
            if case.mrc_final != "ok":
                ecare_faults.add(Fault(endpoint=MRC, times=1, **FINAL_MRC[case.mrc_final]))
            for name in case.status_transients:
                ecare_faults.add(Fault(endpoint=MRCSTATUS, times=1, **TRANSIENT_STATUS[name]))
            done = await saga.run(record.id, timeout=20)
            assert done is not None and done.final and done.receipts_done
            if "held" in case.debit_transients + case.mrc_transients + case.status_transients:
                await asyncio.sleep(HELD + 0.03)  # held calls land before the next record's faults
            caas_faults.clear()
            ecare_faults.clear()

        debits = await _json(http, f"{bdapps_url}/_control/caas/debits")
        recharges = await _json(http, f"{ecare_root}/_control/ecare/recharges")
        records = [await ledger.get(i) for i in ids]
        debited = {d["externalTrxId"]: Decimal(d["amount"]) for d in debits}
        recharged = {r["refid"]: Decimal(r["amount"]) for r in recharges if r["status"] == "SUCCESS"}
        submitted = {r["refid"] for r in recharges}
        assert len(debits) == len(debited) and len(recharges) == len(submitted)  # one per key, ever
        refunds = sum((r.amount_decimal for r in records if r.state is S.REFUND_REQUIRED), Decimal(0))
        # The property.
        assert sum(debited.values(), Decimal(0)) == sum(recharged.values(), Decimal(0)) + refunds, (
            [(r.state.value, r.reason) for r in records])
        # ... and every record's own story.
        for record in records:
            event(f"{record.state.value} {record.reason}".strip())
            assert record.state in (S.COMPLETED, S.FAILED_NOT_CHARGED, S.REFUND_REQUIRED), (record.state, record.note)
            if record.state is S.COMPLETED:
                assert debited.get(record.external_trx_id) == record.amount_decimal
                assert recharged.get(record.refid) == record.amount_decimal
            elif record.state is S.FAILED_NOT_CHARGED:
                assert record.external_trx_id not in debited and record.refid not in submitted
            else:
                assert debited.get(record.external_trx_id) == record.amount_decimal
                assert record.refid not in recharged
        # One payer receipt per record, whatever happened.
        payer_sms = [m for m in sent_sms(bdapps) if m["to"] == PAYER]
        assert len(payer_sms) == len(records)
        await sender.aclose()
        await caas.aclose()
        await ecare.aclose()
    finally:
        await http.close()
        for runner, _ in runners:
            await runner.cleanup()


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scenarios(), min_size=1, max_size=3))
def test_money_debited_equals_money_recharged_plus_refunds_due(cases: list[Scenario]):
    asyncio.run(run_example(cases))
