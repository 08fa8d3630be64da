"""What every step of the recharge saga shares: the step outcomes, the lease of the running
step, and the fenced ledger writes (`_update`, `_move`, `_end`, `_later`).

The steps themselves: debit_steps.py (REQUESTED, DEBITING), mrc_steps.py (DEBITED,
RECHARGING, SUBMITTED); saga.py drives them.
"""
from __future__ import annotations

import contextvars
import random
from dataclasses import dataclass
from typing import Any, Callable

import structlog

from server.integrations.base import UpstreamError
from server.integrations.caas import CaasClient
from server.integrations.ecare import ECareClient
from server.render.environment import Renderer
from server.store.ledger import Ledger, RechargeLease, RechargeRecord, RechargeState

from .lease_keeper import RechargeLeaseKeeper
from .saga_policy import SagaPolicy

log = structlog.get_logger("alap.recharge")

S = RechargeState

# LeaseLost (server.store.ledger): our lease on the record expired and another worker may hold
# it: stop, write nothing. Raised by RechargeLeaseKeeper.hold() and by every fenced ledger write.

# The lease of the step running in this task (None: unfenced, e.g. run() in-process).
CURRENT_LEASE: contextvars.ContextVar[RechargeLeaseKeeper | None] = contextvars.ContextVar("recharge_lease",
                                                                                    default=None)


@dataclass(frozen=True)
class StepResult:
    record: RechargeRecord | None
    due_at: float | None  # look again at this time; None: nothing more to do (final, receipts out)


@dataclass(frozen=True)
class Next:
    """A handler moved the record on: the step goes on with the next state's handler."""

    record: RechargeRecord


# A handler's answer: go on (Next), or end the step to look again at `due_at` (a StepResult).
Outcome = Next | StepResult


class SagaSteps:
    """The state and helpers the step classes use; RechargeSaga (saga.py) sets them up."""

    ledger: Ledger
    caas: CaasClient
    ecare: ECareClient
    sms: Any
    renderer: Renderer | None
    policy: SagaPolicy
    worker_id: str
    clock: Callable[[], float]

    # -- helpers -----------------------------------------------------------------------------------
    def _delay(self, base: float, maximum: float, n: int) -> float:
        delay = min(maximum, base * (2 ** max(0, min(n - 1, 30))))
        return delay * (1 + random.random() * self.policy.jitter)

    @staticmethod
    def _fence() -> RechargeLease | None:
        keeper = CURRENT_LEASE.get()
        return keeper.lease if keeper is not None else None

    async def _update(self, record: RechargeRecord, **fields: Any) -> RechargeRecord:
        """A write inside the record's current state, fenced by this step's lease."""
        return await self.ledger.update(record.id, record.state, lease=self._fence(), **fields)

    async def _move(self, record: RechargeRecord, new: RechargeState, note: str, **fields: Any) -> RechargeRecord:
        moved = await self.ledger.transition(record.id, record.state, new, note, by=self.worker_id,
                                             lease=self._fence(), **fields)
        log.info("recharge_state", id=record.id, state=new.value, note=note, reason=fields.get("reason", ""))
        return moved

    async def _end(self, record: RechargeRecord, new: RechargeState, reason: str, note: str, **fields: Any) -> Next:
        return Next(await self._move(record, new, note, reason=reason, next_at=None, **fields))

    async def _later(self, record: RechargeRecord, note: str, *, base: float | None = None,
                     maximum: float | None = None, n: int | None = None, **fields: Any) -> StepResult:
        attempts = fields.pop("attempts", record.attempts)
        due = self.clock() + self._delay(self.policy.retry_delay if base is None else base,
                                         self.policy.retry_max_delay if maximum is None else maximum,
                                         attempts if n is None else n)
        record = await self._update(record, attempts=attempts, next_at=due, note=note, **fields)
        return StepResult(record, due)

    def _gave_up(self, record: RechargeRecord) -> bool:
        return self.clock() - record.state_since >= self.policy.give_up_after

    @staticmethod
    async def _hold(lease: RechargeLeaseKeeper | None) -> None:
        if lease is not None:
            await lease.hold()

    @staticmethod
    def _code(exc: UpstreamError) -> str:
        return f"{exc.upstream} {exc.code}" + (f" ({exc.detail})" if exc.detail else "")
