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

import asyncio
import contextvars
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import structlog

from server.integrations.base import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamMalformed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from server.integrations.caas import (
    CaasChargeDeclined,
    CaasClient,
    CaasDuplicate,
    CaasInsufficientBalance,
    CaasTemporaryError,
)
from server.integrations.ecare import (
    ECareAuthError,
    ECareClient,
    ECareDuplicate,
    ECareInvalid,
    ECareInvalidRef,
    ECareLowBalance,
    ECareMaintenance,
    ECareRejected,
    NumberType,
    Operator,
    RechargeState as ECareState,
    RechargeStatus,
)
from server.render.environment import Renderer
from server.store.base import StoreUnavailable
from server.store.ledger import Ledger, LeaseLost, LedgerLease, RechargeRecord, RechargeState, StateConflict

from .receipts import build_receipts

log = structlog.get_logger("alap.recharge")

S = RechargeState

# --- request fields ----------------------------------------------------------------------------

_OPERATOR_ALIASES = {
    "GP": Operator.GRAMEENPHONE, "GRAMEEN": Operator.GRAMEENPHONE, "BL": Operator.BANGLALINK,
    "TT": Operator.TELETALK, "ROBI_AXIATA": Operator.ROBI,
}
_NUMBER_TYPE_ALIASES = {
    "PRE": NumberType.PREPAID, "POST": NumberType.POSTPAID, "POWER_LOAD": NumberType.POWERLOAD,
    "GSTORE": NumberType.POWERLOAD, "G_STORE": NumberType.POWERLOAD, "G.STORE": NumberType.POWERLOAD,
    "AMAR_OFFER": NumberType.POWERLOAD, "AMAROFFER": NumberType.POWERLOAD,
}
# eCare lists Grameenphone as 3/7 and Banglalink as 4/9: the code follows the number's prefix.
_PREFIX_CODES = {(Operator.GRAMEENPHONE, "013"): Operator.GRAMEENPHONE_013,
                 (Operator.BANGLALINK, "014"): Operator.BANGLALINK_014}


def parse_operator(value: str | int) -> Operator:
    """An eCare operator from its code ("7") or name ("GRAMEENPHONE", "Robi", "gp")."""
    text = str(value).strip().upper().replace(" ", "_").replace("-", "_")
    if text.isdigit():
        try:
            return Operator(int(text))
        except ValueError:
            raise ValueError(f"unknown eCare operator code {value!r}") from None
    found = Operator.__members__.get(text) or _OPERATOR_ALIASES.get(text)
    if found is None:
        raise ValueError(f"unknown eCare operator {value!r}")
    return found


def ecare_operator(value: str | int, recipient: str) -> Operator:
    """The operator code to send for this recipient: a named Grameenphone / Banglalink operator
    takes the code of the recipient's prefix (013 -> 3, 014 -> 4); an explicit code is kept."""
    operator = parse_operator(value)
    if str(value).strip().isdigit():
        return operator
    return _PREFIX_CODES.get((operator, recipient[:3]), operator)


def parse_number_type(value: str | int) -> NumberType:
    """An eCare number type from its code ("1") or name ("PREPAID", "skitto")."""
    text = str(value).strip().upper().replace(" ", "_").replace("-", "_")
    if text.isdigit():
        try:
            return NumberType(int(text))
        except ValueError:
            raise ValueError(f"unknown eCare number type code {value!r}") from None
    found = NumberType.__members__.get(text) or _NUMBER_TYPE_ALIASES.get(text)
    if found is None:
        raise ValueError(f"unknown eCare number type {value!r}")
    return found


# --- policy ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SagaPolicy:
    """Timing and bounds (settings: ALAP_RECHARGE_* in config.py)."""

    retry_delay: float = 5.0  # first wait after a passing error (doubles per attempt)
    retry_max_delay: float = 300.0
    poll_delay: float = 5.0  # first MRCSTATUS poll after a submission (doubles per poll)
    poll_max_delay: float = 120.0
    poll_timeout: float = 3600.0  # SUBMITTED for longer than this without a final status -> NEEDS_REVIEW
    give_up_after: float = 1800.0  # passing errors in one state for this long -> stop (see docs)
    max_unknown: int = 5  # unknown outcomes of one money call -> NEEDS_REVIEW
    max_step_errors: int = 5  # consecutive unexpected errors in steps of one record -> NEEDS_REVIEW
    check_wallet: bool = True  # eCare BLCK before debiting
    jitter: float = 0.1  # +0..10% on every delay, so many records do not retry in lockstep

    @classmethod
    def from_settings(cls, settings: Any) -> "SagaPolicy":
        def get(name: str, default: Any) -> Any:
            value = getattr(settings, name, None)
            return default if value is None else value

        d = cls()
        return cls(retry_delay=float(get("recharge_retry_delay", d.retry_delay)),
                   retry_max_delay=float(get("recharge_retry_max_delay", d.retry_max_delay)),
                   poll_delay=float(get("recharge_poll_delay", d.poll_delay)),
                   poll_max_delay=float(get("recharge_poll_max_delay", d.poll_max_delay)),
                   poll_timeout=float(get("recharge_poll_timeout", d.poll_timeout)),
                   give_up_after=float(get("recharge_give_up_after", d.give_up_after)),
                   max_unknown=int(get("recharge_max_unknown", d.max_unknown)))


# LeaseLost (server.store.ledger): our lease on the record expired and another worker may hold
# it: stop, write nothing. Raised by LeaseKeeper.hold() and by every fenced ledger write.

# CAAS answers that say the debit was refused before anything was charged: authentication /
# IP not provisioned (E1313, E1303), a field we sent is wrong (E1312, E1325, E1317), the
# subscriber or application may not be charged (E1328, E1342, E1343), and the charging
# declines (E1308, E1326; a decline of a repeated externalTrxId is the answer to the first
# call, under the documented CAAS idempotency assumption). HTTP 400/401/403/404/405/415
# without a BDApps code: the gateway refused the request itself. Any other code (E1601
# "unexpected error", codes we do not know) leaves the outcome unknown: asked again, same id.
DEBIT_REFUSED_CODES = frozenset({"E1313", "E1303", "E1312", "E1325", "E1317", "E1328", "E1342", "E1343",
                                 "E1308", "E1326", "400", "401", "403", "404", "405", "415"})

# The lease of the step running in this task (None: unfenced, e.g. run() in-process).
_CURRENT_LEASE: contextvars.ContextVar[LeaseKeeper | None] = contextvars.ContextVar("recharge_lease",
                                                                                    default=None)


class LeaseKeeper:
    """A worker's lease on one record, renewed before every outbound money call."""

    def __init__(self, ledger: Ledger, lease: LedgerLease, seconds: float) -> None:
        self.ledger = ledger
        self.lease = lease
        self.seconds = seconds

    async def hold(self) -> None:
        renewed = await self.ledger.renew(self.lease, self.seconds)
        if renewed is None:
            raise LeaseLost(self.lease.record_id)
        self.lease = renewed


@dataclass(frozen=True)
class StepResult:
    record: RechargeRecord | None
    due_at: float | None  # look again at this time; None: nothing more to do (final, receipts out)


@dataclass(frozen=True)
class _Next:
    record: RechargeRecord


@dataclass(frozen=True)
class _Wait:
    record: RechargeRecord
    due_at: float


Outcome = _Next | _Wait


# --- the saga ----------------------------------------------------------------------------------

class RechargeSaga:
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
        self._handlers: dict[RechargeState, Callable[[RechargeRecord, LeaseKeeper | None], Awaitable[Outcome]]] = {
            S.REQUESTED: self._requested, S.DEBITING: self._debiting, S.DEBITED: self._debited,
            S.RECHARGING: self._recharging, S.SUBMITTED: self._submitted,
        }

    # -- driving ---------------------------------------------------------------------------------
    async def step(self, record_id: str, lease: LeaseKeeper | None = None) -> StepResult:
        """Advance the record as far as it goes without waiting. Raises LeaseLost (write
        nothing more) and StoreUnavailable (try later); upstream trouble never raises.

        With `lease`, every ledger write of the step is fenced by it: a write after the lease
        ran out (and another worker may have the record) raises LeaseLost instead."""
        token = _CURRENT_LEASE.set(lease)
        try:
            result = await self._step(record_id, lease)
            if result.record is not None and result.record.step_errors:  # the error streak is over
                try:
                    result = StepResult(await self._update(result.record, step_errors=0), result.due_at)
                except StateConflict:
                    pass
            return result
        finally:
            _CURRENT_LEASE.reset(token)

    async def step_failed(self, record_id: str, error: BaseException,
                          lease: LeaseKeeper | None = None) -> StepResult | None:
        """A step raised an unexpected error (a bug, not upstream trouble): count it on the
        record; after `max_step_errors` in a row a record that is not final goes to
        NEEDS_REVIEW with the error in its note (instead of being retried forever). Returns the
        step result when it was moved (its receipts are then due), else None."""
        token = _CURRENT_LEASE.set(lease)
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
            _CURRENT_LEASE.reset(token)

    async def _step(self, record_id: str, lease: LeaseKeeper | None) -> StepResult:
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
            if isinstance(outcome, _Wait):
                return StepResult(outcome.record, outcome.due_at)
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

    # -- helpers -----------------------------------------------------------------------------------
    def _delay(self, base: float, maximum: float, n: int) -> float:
        delay = min(maximum, base * (2 ** max(0, min(n - 1, 30))))
        return delay * (1 + random.random() * self.policy.jitter)

    @staticmethod
    def _fence() -> LedgerLease | None:
        keeper = _CURRENT_LEASE.get()
        return keeper.lease if keeper is not None else None

    async def _update(self, record: RechargeRecord, **fields: Any) -> RechargeRecord:
        """A write inside the record's current state, fenced by this step's lease."""
        return await self.ledger.update(record.id, record.state, lease=self._fence(), **fields)

    async def _move(self, record: RechargeRecord, new: RechargeState, note: str, **fields: Any) -> RechargeRecord:
        moved = await self.ledger.transition(record.id, record.state, new, note, by=self.worker_id,
                                             lease=self._fence(), **fields)
        log.info("recharge_state", id=record.id, state=new.value, note=note, reason=fields.get("reason", ""))
        return moved

    async def _end(self, record: RechargeRecord, new: RechargeState, reason: str, note: str, **fields: Any) -> _Next:
        return _Next(await self._move(record, new, note, reason=reason, next_at=None, **fields))

    async def _later(self, record: RechargeRecord, note: str, *, base: float | None = None,
                     maximum: float | None = None, n: int | None = None, **fields: Any) -> _Wait:
        attempts = fields.pop("attempts", record.attempts)
        due = self.clock() + self._delay(self.policy.retry_delay if base is None else base,
                                         self.policy.retry_max_delay if maximum is None else maximum,
                                         attempts if n is None else n)
        record = await self._update(record, attempts=attempts, next_at=due, note=note, **fields)
        return _Wait(record, due)

    def _gave_up(self, record: RechargeRecord) -> bool:
        return self.clock() - record.state_since >= self.policy.give_up_after

    @staticmethod
    async def _hold(lease: LeaseKeeper | None) -> None:
        if lease is not None:
            await lease.hold()

    @staticmethod
    def _code(exc: UpstreamError) -> str:
        return f"{exc.upstream} {exc.code}" + (f" ({exc.detail})" if exc.detail else "")

    # -- REQUESTED ---------------------------------------------------------------------------------
    async def _requested(self, record: RechargeRecord, lease: LeaseKeeper | None) -> Outcome:
        try:
            parse_operator(record.operator)
            parse_number_type(record.number_type)
        except ValueError as exc:
            return await self._end(record, S.FAILED_NOT_CHARGED, "invalid", str(exc))
        if self.policy.check_wallet:
            try:
                wallet = await self.ecare.balance()
            except (ECareAuthError, ECareInvalid) as exc:
                return await self._end(record, S.FAILED_NOT_CHARGED, "service_error",
                                       f"eCare BLCK refused: {self._code(exc)}")
            except UpstreamError as exc:  # nothing moved yet: retry, give up after a while
                if self._gave_up(record):
                    return await self._end(record, S.FAILED_NOT_CHARGED, "unavailable",
                                           f"eCare BLCK unavailable too long: {self._code(exc)}")
                return await self._later(record, f"BLCK: {self._code(exc)}", attempts=record.attempts + 1)
            if wallet.main_balance < record.amount_decimal:
                return await self._end(record, S.FAILED_NOT_CHARGED, "wallet_low",
                                       f"eCare wallet {wallet.main_balance} < {record.amount}: not debited")
        note = f"wallet ok; debit {record.amount} under externalTrxId {record.external_trx_id}"
        return _Next(await self._move(record, S.DEBITING, note))

    # -- DEBITING ----------------------------------------------------------------------------------
    @staticmethod
    def _debit_in_flight(record: RechargeRecord) -> bool:
        """An earlier debit call may have reached CAAS and its answer was never recorded (the
        worker died, was cancelled, or lost its lease during the call)."""
        if record.debit_maybe_sent is None:  # entered DEBITING before the flag existed
            return record.attempts > 0
        return record.debit_maybe_sent

    async def _debiting(self, record: RechargeRecord, lease: LeaseKeeper | None) -> Outcome:
        # An earlier call with no recorded answer is one unknown outcome: it may have charged.
        unknown = record.debit_unknown + (1 if self._debit_in_flight(record) else 0)
        if unknown >= self.policy.max_unknown:
            return await self._end(record, S.NEEDS_REVIEW, "debit_unknown", f"{unknown} debit outcomes unknown",
                                   debit_unknown=unknown, debit_maybe_sent=False)
        await self._hold(lease)
        # The write before the call: the key is in the record; the attempt is counted and the
        # call is marked as possibly sent until its answer is written.
        record = await self._update(record, attempts=record.attempts + 1, next_at=None, debit_maybe_sent=True,
                                    debit_unknown=unknown)
        try:
            result = await self.caas.direct_debit(record.payer, record.amount_decimal, record.external_trx_id)
        except CaasInsufficientBalance as exc:
            # A decline of the same externalTrxId is the answer to every earlier call too (CAAS
            # idempotency assumption, docs/recharge.md).
            return await self._end(record, S.FAILED_NOT_CHARGED, "insufficient_balance", self._code(exc),
                                   debit_maybe_sent=False)
        except CaasChargeDeclined as exc:
            return await self._end(record, S.FAILED_NOT_CHARGED, "declined", self._code(exc),
                                   debit_maybe_sent=False)
        except CaasDuplicate as exc:
            # The gateway refused THIS request as a repeat; whether the first was charged is unknown.
            return await self._end(record, S.NEEDS_REVIEW, "debit_duplicate", self._code(exc),
                                   debit_maybe_sent=False)
        except (UpstreamConnectError, CaasTemporaryError) as exc:
            if isinstance(exc, CaasTemporaryError) and exc.code in ("E1602", "E1603"):
                return await self._debit_unknown(record, exc)  # "temporary system error": maybe applied
            # Never reached CAAS, or throttled (E1318/E1319): nothing was charged by THIS call
            # (an earlier one may have been: record.debit_unknown counts it).
            if self._gave_up(record):
                if record.debit_unknown:
                    return await self._end(record, S.NEEDS_REVIEW, "debit_unknown",
                                           f"gave up after {self._code(exc)}; {record.debit_unknown} earlier "
                                           f"debit outcome(s) unknown", debit_maybe_sent=False)
                return await self._end(record, S.FAILED_NOT_CHARGED, "unavailable",
                                       f"CAAS unavailable too long: {self._code(exc)}", debit_maybe_sent=False)
            return await self._later(record, f"debit not sent: {self._code(exc)}", debit_maybe_sent=False)
        except (UpstreamTimeout, UpstreamMalformed, UpstreamUnavailable) as exc:
            return await self._debit_unknown(record, exc)
        except UpstreamRejected as exc:
            if exc.code not in DEBIT_REFUSED_CODES:
                # Not a code known to mean "refused before charging" (E1601 "unexpected error",
                # an unknown code): the charge may have been applied. Ask again, same id.
                return await self._debit_unknown(record, exc)
            # Refused outright (credentials, IP, invalid request...): says nothing about an
            # earlier call whose answer we never saw.
            if record.debit_unknown:
                return await self._end(record, S.NEEDS_REVIEW, "debit_unknown",
                                       f"{self._code(exc)} after {record.debit_unknown} unknown debit outcome(s)",
                                       debit_maybe_sent=False)
            return await self._end(record, S.FAILED_NOT_CHARGED, "debit_error", self._code(exc),
                                   debit_maybe_sent=False)
        except (ValueError, TypeError) as exc:  # refused before sending (amount, id)
            if record.debit_unknown:
                return await self._end(record, S.NEEDS_REVIEW, "debit_unknown",
                                       f"debit not sent ({exc}) after {record.debit_unknown} unknown outcome(s)",
                                       debit_maybe_sent=False)
            return await self._end(record, S.FAILED_NOT_CHARGED, "invalid", f"debit not sent: {exc}",
                                   debit_maybe_sent=False)
        note = f"debited {result.amount}, internalTrxId {result.internal_trx_id}"
        try:
            moved = await self._move(record, S.DEBITED, note, caas_trx_id=result.internal_trx_id,
                                     debit_maybe_sent=False)
        except StateConflict:
            return await self._charged_but_moved(record.id, result.internal_trx_id, note)
        return _Next(moved)

    async def _charged_but_moved(self, record_id: str, caas_trx_id: str, note: str) -> Outcome:
        """CAAS charged, but the record left DEBITING under us (an unfenced writer, or a write
        that raced ours): a charge nobody recorded must reach an operator, never stay
        FAILED_NOT_CHARGED."""
        current = await self.ledger.get(record_id)
        if current is None:
            raise StateConflict(record_id, {S.DEBITING}, None)
        log.error("recharge_charge_after_state_change", id=record_id, state=current.state.value,
                  caas_trx_id=caas_trx_id)
        if current.state is S.FAILED_NOT_CHARGED:
            moved = await self._move(current, S.NEEDS_REVIEW,
                                     f"{note} AFTER the record was ended {current.state.value} "
                                     f"({current.reason}): the subscriber was charged",
                                     reason="debit_after_end", caas_trx_id=caas_trx_id, next_at=None,
                                     debit_maybe_sent=False, receipts_done=False, payer_receipt=None,
                                     recipient_receipt=None)
            return _Next(moved)
        if current.state is S.NEEDS_REVIEW and not current.caas_trx_id:
            return _Next(await self._update(current, caas_trx_id=caas_trx_id, note=f"{note} (charged)"))
        raise StateConflict(record_id, {S.DEBITING}, current.state)

    async def _debit_unknown(self, record: RechargeRecord, exc: UpstreamError) -> Outcome:
        unknown = record.debit_unknown + 1
        if unknown >= self.policy.max_unknown:
            return await self._end(record, S.NEEDS_REVIEW, "debit_unknown",
                                   f"{unknown} debit outcomes unknown (last: {self._code(exc)})",
                                   debit_unknown=unknown, debit_maybe_sent=False)
        log.warning("recharge_debit_unknown", id=record.id, code=exc.code, unknown=unknown)
        return await self._later(record, f"debit outcome unknown ({self._code(exc)}): ask again, same id",
                                 n=unknown, debit_unknown=unknown, debit_maybe_sent=False)

    # -- DEBITED -----------------------------------------------------------------------------------
    async def _debited(self, record: RechargeRecord, lease: LeaseKeeper | None) -> Outcome:
        note = f"recharge {record.recipient} {record.amount} under refid {record.refid}"
        return _Next(await self._move(record, S.RECHARGING, note, recharge_maybe_sent=False))

    # -- RECHARGING --------------------------------------------------------------------------------
    async def _recharging(self, record: RechargeRecord, lease: LeaseKeeper | None) -> Outcome:
        if record.recharge_maybe_sent:
            # An earlier MRC under this refid may have reached eCare: ask before sending again.
            try:
                status = await self.ecare.recharge_status(record.refid)
            except ECareInvalidRef:
                record = await self._update(record, recharge_maybe_sent=False,
                                            note="MRCSTATUS INVALIDREF: eCare has no recharge under refid")
            except UpstreamError as exc:
                if self._gave_up(record):
                    return await self._end(record, S.NEEDS_REVIEW, "recharge_unknown",
                                           f"MRC may have been sent; MRCSTATUS unavailable: {self._code(exc)}")
                return await self._later(record, f"MRCSTATUS: {self._code(exc)}",
                                         n=max(1, record.recharge_unknown))
            else:
                record = await self._move(record, S.SUBMITTED, f"MRCSTATUS {status.state.value}: an earlier MRC landed",
                                          ecare_status=status.state.value)
                return await self._apply_status(record, status)
        if record.recharge_unknown >= self.policy.max_unknown:
            return await self._end(record, S.NEEDS_REVIEW, "recharge_unknown",
                                   f"{record.recharge_unknown} MRC outcomes unknown")
        try:
            operator = ecare_operator(record.operator, record.recipient)
            number_type = parse_number_type(record.number_type)
        except ValueError as exc:  # checked in REQUESTED: only a hand-edited record gets here
            return await self._end(record, S.REFUND_REQUIRED, "invalid", str(exc))
        await self._hold(lease)
        # The write before the call: from here an MRC under refid may exist at eCare.
        record = await self._update(record, recharge_maybe_sent=True, attempts=record.attempts + 1, next_at=None)
        try:
            submission = await self.ecare.recharge(record.recipient, record.amount_decimal, operator, number_type,
                                                   record.refid)
        except ECareDuplicate as exc:
            record = await self._move(record, S.SUBMITTED, f"MRC {exc.code}: refid already with eCare, resolve by MRCSTATUS")
            return _Next(record)
        except ECareLowBalance as exc:
            return await self._end(record, S.REFUND_REQUIRED, "wallet_low", f"MRC {self._code(exc)}")
        except ECareRejected as exc:
            return await self._end(record, S.REFUND_REQUIRED, "rejected", f"MRC {self._code(exc)}")
        except (ECareMaintenance, UpstreamConnectError) as exc:
            # eCare did nothing with THIS call (an earlier MRC may have landed: a lost mark, or
            # an unknown outcome): before any refund, MRCSTATUS is asked once.
            if self._gave_up(record):
                record = await self._update(record, recharge_maybe_sent=False)
                return await self._before_refund(record, "recharge_unavailable",
                                                 f"eCare unavailable too long: {self._code(exc)}")
            return await self._later(record, f"MRC not done: {self._code(exc)}", recharge_maybe_sent=False)
        except (UpstreamTimeout, UpstreamMalformed, UpstreamUnavailable) as exc:
            unknown = record.recharge_unknown + 1
            log.warning("recharge_mrc_unknown", id=record.id, code=exc.code, unknown=unknown)
            return await self._later(record, f"MRC outcome unknown ({self._code(exc)}): ask MRCSTATUS",
                                     n=unknown, recharge_unknown=unknown)
        except UpstreamRejected as exc:  # credentials, invalid service: refused, nothing recharged by it
            if record.recharge_unknown:  # ... but an earlier MRC's outcome is unknown
                record = await self._update(record, recharge_maybe_sent=False)
                return await self._before_refund(record, "recharge_error", f"MRC {self._code(exc)}")
            return await self._end(record, S.REFUND_REQUIRED, "recharge_error", f"MRC {self._code(exc)}",
                                   recharge_maybe_sent=False)
        except (ValueError, TypeError) as exc:  # refused before sending
            return await self._end(record, S.REFUND_REQUIRED, "invalid", f"MRC not sent: {exc}",
                                   recharge_maybe_sent=False)
        note = "MRC RECEIVED" + (f", TRXID {submission.trxid}" if submission.trxid else "")
        record = await self._move(record, S.SUBMITTED, note, ecare_trx_id=submission.trxid or record.ecare_trx_id)
        return await self._later(record, note, base=self.policy.poll_delay, maximum=self.policy.poll_max_delay, n=1)

    async def _before_refund(self, record: RechargeRecord, reason: str, why: str) -> Outcome:
        """About to refund while an earlier MRC under refid may have landed: ask MRCSTATUS once.
        A known refid is followed like any submission; INVALIDREF (and no unknown MRC outcome:
        eCare may lag in showing a refid it took) confirms the refund; anything else is left
        to an operator."""
        try:
            status = await self.ecare.recharge_status(record.refid)
        except ECareInvalidRef as exc:
            if record.recharge_unknown:
                return await self._end(record, S.NEEDS_REVIEW, "recharge_unknown",
                                       f"{why}; MRCSTATUS {exc.code} but {record.recharge_unknown} MRC outcome(s) "
                                       f"unknown")
            return await self._end(record, S.REFUND_REQUIRED, reason, f"{why}; MRCSTATUS {exc.code}: not recharged")
        except UpstreamError as exc:
            return await self._end(record, S.NEEDS_REVIEW, "recharge_unknown",
                                   f"{why}; MRCSTATUS unavailable ({self._code(exc)}): an earlier MRC may have landed")
        record = await self._move(record, S.SUBMITTED, f"{why}; but MRCSTATUS {status.state.value}: an earlier MRC "
                                  f"landed", ecare_status=status.state.value)
        return await self._apply_status(record, status)

    # -- SUBMITTED ---------------------------------------------------------------------------------
    async def _submitted(self, record: RechargeRecord, lease: LeaseKeeper | None) -> Outcome:
        if self.clock() - record.state_since >= self.policy.poll_timeout:
            return await self._end(record, S.NEEDS_REVIEW, "status_unknown",
                                   f"no final MRCSTATUS after {record.polls} polls "
                                   f"(last {record.ecare_status or 'none'})")
        try:
            status = await self.ecare.recharge_status(record.refid)
        except ECareInvalidRef as exc:  # eCare accepted the refid but does not show it (yet)
            return await self._poll_later(record, record.polls + 1, f"MRCSTATUS {exc.code}")
        except UpstreamError as exc:
            return await self._poll_later(record, record.polls + 1, f"MRCSTATUS: {self._code(exc)}")
        return await self._apply_status(record, status)

    async def _apply_status(self, record: RechargeRecord, status: RechargeStatus) -> Outcome:
        polls = record.polls + 1
        trx = status.trxid or record.ecare_trx_id
        if status.state is ECareState.SUCCESS:
            return await self._end(record, S.COMPLETED, "", f"MRCSTATUS SUCCESS, TRXID {trx}", ecare_trx_id=trx,
                                   polls=polls, ecare_status=status.state.value)
        if status.state is ECareState.FAILED:
            return await self._end(record, S.REFUND_REQUIRED, "recharge_failed", f"MRCSTATUS FAILED, TRXID {trx}",
                                   ecare_trx_id=trx, polls=polls, ecare_status=status.state.value)
        if status.state.value != record.ecare_status:  # PENDING -> PROCESSING: worth a history line
            record = await self._move(record, S.SUBMITTED, f"MRCSTATUS {status.state.value}",
                                      ecare_status=status.state.value)
        return await self._poll_later(record, polls, f"MRCSTATUS {status.state.value}")

    async def _poll_later(self, record: RechargeRecord, polls: int, note: str) -> _Wait:
        return await self._later(record, note, base=self.policy.poll_delay, maximum=self.policy.poll_max_delay,
                                 n=polls + 1, polls=polls)

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


__all__ = ["LeaseKeeper", "LeaseLost", "RechargeSaga", "SagaPolicy", "StepResult", "ecare_operator",
           "parse_number_type", "parse_operator"]
