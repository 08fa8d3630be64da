"""The recharge saga: one ledger record from REQUESTED to a final state, money-safe.

    REQUESTED   check the operator/number type; eCare BLCK: a wallet that cannot cover the
                amount ends here (FAILED_NOT_CHARGED), before the subscriber pays anything
      -> DEBITING   (written before the call) CAAS direct debit under the record's
                externalTrxId; repeated with the SAME id until CAAS says yes or no
      -> DEBITED    the money is taken (CAAS internalTrxId kept)
      -> RECHARGING (written before the call) eCare MRC under the record's refid; when an
                earlier MRC may have reached eCare, MRCSTATUS is asked first and the MRC is
                sent again (same refid) only when eCare does not know the refid
      -> SUBMITTED  eCare has it (RECEIVED, or DUPLICATE = an earlier MRC landed): poll
                MRCSTATUS with backoff, PENDING/PROCESSING until SUCCESS or FAILED
      -> COMPLETED | REFUND_REQUIRED | NEEDS_REVIEW | FAILED_NOT_CHARGED, then SMS receipts.

Rules kept at every step:
- every outbound money call is preceded by a ledger write that names its key (both keys are
  in the record from creation; the write before the call bumps `attempts` and sets
  `debit_maybe_sent` / `recharge_maybe_sent`, which every recorded answer clears: a debit
  found still "maybe sent" counts as one unknown outcome), and every retry reuses the key;
- under a worker's lease every ledger write is fenced by it (LeaseLost: write nothing more);
- only CAAS codes known to mean "refused before charging" end a debit "not charged"; any
  other answer is an unknown outcome, asked again under the same id;
- no refund after giving up on an MRC without asking MRCSTATUS once (an earlier MRC under
  the refid may have landed);
- an answer that says nothing was done (declined, maintenance, refused connection) is final
  or retried; an answer that leaves the outcome unknown (timeout, unreadable answer, 5xx) is
  resolved by asking again under the same key (CAAS: the debit again, idempotent on
  externalTrxId; eCare: MRCSTATUS), never by a new key; after `max_unknown` unknown outcomes
  of one call the record goes to NEEDS_REVIEW for an operator;
- a CAAS debit that succeeded is followed by a recharge or by REFUND_REQUIRED / NEEDS_REVIEW,
  never by silence.

`step()` advances a record as far as it can without waiting and says when to look again;
`run()` repeats steps (sleeping in between) until the record is final and its receipts are
out. The worker (worker.py) calls `step()` under a lease; tests and in-process use call `run()`.
"""
from __future__ import annotations
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import structlog

from server.integrations.caas import CaasClient
from server.integrations.ecare import ECareClient
from server.render.environment import Renderer
from server.store.base import StoreUnavailable
from server.store.ledger import Ledger, RechargeRecord, RechargeState, StateConflict

from .debit_steps import DebitSteps
from .lease_keeper import RechargeLeaseKeeper
from .mrc_steps import MrcSteps
from .receipts import build_receipts
from .saga_policy import SagaPolicy
from .saga_steps import CURRENT_LEASE, Outcome, S, StepResult

log = structlog.get_logger("alap.recharge")


# --- the saga ----------------------------------------------------------------------------------

class RechargeSaga(DebitSteps, MrcSteps):
    def __init__(self, ledger: Ledger, caas: CaasClient, ecare: ECareClient, sms_sender: Any | None,
                 renderer: Renderer | None, policy: SagaPolicy | None = None, *, worker_id: str = "saga",
                 clock: Callable[[], float] = time.time) -> None:
        """sms_sender: a server.messaging.SmsSender (None: receipts are skipped and noted);
        renderer: for the receipts' texts (None with no sender)."""
        self.ledger = ledger
        self.caas = caas
        self.ecare = ecare
        self.sms = sms_sender
        self.renderer = renderer
        self.policy = policy or SagaPolicy()
        self.worker_id = worker_id
        self.clock = clock
        self._handlers: dict[RechargeState, Callable[[RechargeRecord, RechargeLeaseKeeper | None], Awaitable[Outcome]]] = {
            S.REQUESTED: self._requested, S.DEBITING: self._debiting, S.DEBITED: self._debited,
            S.RECHARGING: self._recharging, S.SUBMITTED: self._submitted,
        }

    # -- driving ---------------------------------------------------------------------------------
    async def step(self, record_id: str, lease: RechargeLeaseKeeper | None = None) -> StepResult:
        """Advance the record as far as it goes without waiting. Raises LeaseLost (write
        nothing more) and StoreUnavailable (try later); upstream trouble never raises.

        With `lease`, every ledger write of the step is fenced by it: a write after the lease
        ran out (and another worker may have the record) raises LeaseLost instead."""
        token = CURRENT_LEASE.set(lease)
        try:
            result = await self._step(record_id, lease)
            if result.record is not None and result.record.step_errors:  # the error streak is over
                try:
                    result = StepResult(await self._update(result.record, step_errors=0), result.due_at)
                except StateConflict:
                    pass
            return result
        finally:
            CURRENT_LEASE.reset(token)

    async def step_failed(self, record_id: str, error: BaseException,
                          lease: RechargeLeaseKeeper | None = None) -> StepResult | None:
        """A step raised an unexpected error (a bug, not upstream trouble): count it on the
        record; after `max_step_errors` in a row a record that is not final goes to
        NEEDS_REVIEW with the error in its note (instead of being retried forever). Returns the
        step result when it was moved (its receipts are then due), else None."""
        token = CURRENT_LEASE.set(lease)
        try:
            record = await self.ledger.get(record_id)
            if record is None:
                return None
            errors = record.step_errors + 1
            detail = f"{type(error).__name__}: {error}"[:300]
            if record.final or errors < self.policy.max_step_errors:
                await self._update(record, step_errors=errors, note=f"step failed ({errors}): {detail}")
                return None
            moved = await self._move(record, S.NEEDS_REVIEW, f"{errors} steps failed in {record.state.value}; "
                                     f"last: {detail}", reason="step_error", next_at=None, step_errors=errors)
            return StepResult(moved, self.clock())
        finally:
            CURRENT_LEASE.reset(token)

    async def _step(self, record_id: str, lease: RechargeLeaseKeeper | None) -> StepResult:
        record = await self.ledger.get(record_id)
        for _ in range(20):  # a record crosses at most ~6 states in one step
            if record is None:
                return StepResult(None, None)
            if record.final:
                return await self._receipts(record)
            try:
                outcome = await self._handlers[record.state](record, lease)
            except StateConflict as exc:
                # Someone else (an operator, a worker whose lease we outlived) moved it: look again.
                log.warning("recharge_state_conflict", id=record_id, detail=str(exc))
                record = await self.ledger.get(record_id)
                if record is not None and not record.final:
                    return StepResult(record, self.clock() + self.policy.retry_delay)
                continue
            if isinstance(outcome, StepResult):
                return outcome
            record = outcome.record
        return StepResult(record, self.clock() + self.policy.retry_delay)

    async def run(self, record_id: str, *, timeout: float | None = None) -> RechargeRecord | None:
        """Steps until the record is final and its receipts are out (in-process use, tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = await self.step(record_id)
            if result.due_at is None:
                return result.record
            wait = max(0.0, result.due_at - self.clock())
            if deadline is not None and time.monotonic() + wait > deadline:
                raise TimeoutError(f"recharge {record_id} not final in time ({result.record.state if result.record else None})")
            await asyncio.sleep(wait)


    # -- receipts ----------------------------------------------------------------------------------
    async def _receipts(self, record: RechargeRecord) -> StepResult:
        if record.receipts_done:
            return StepResult(record, None)
        if self.sms is None or self.renderer is None:
            record = await self._update(record, receipts_done=True)
            log.warning("recharge_no_sms_sender", id=record.id)
            return StepResult(record, None)
        for receipt in build_receipts(self.renderer, record):
            field = f"{receipt.role}_receipt"
            if getattr(record, field):
                continue  # sent before a crash or a store error
            try:
                sent = await self.sms.send(receipt.to, receipt.text, kind="receipt",
                                           reply_to_request=receipt.reply_to_request)
            except StoreUnavailable:
                raise
            except Exception:  # a bug in a route: the SmsSender already logs provider failures
                log.exception("recharge_receipt_failed", id=record.id, role=receipt.role)
                return StepResult(record, self.clock() + self.policy.retry_delay)
            record = await self._update(record, **{field: f"{sent.status.value} {sent.message_id or sent.id}"})
        record = await self._update(record, receipts_done=True)
        return StepResult(record, None)

