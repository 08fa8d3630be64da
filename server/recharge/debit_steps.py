"""The saga's debit half: REQUESTED (checks, eCare wallet) and DEBITING (the CAAS direct debit
under the record's externalTrxId, asked again under the same id until CAAS says yes or no).
The rules every step keeps are in saga.py's docstring."""
from __future__ import annotations

import structlog

from server.integrations.base import (
    UpstreamConnectError, UpstreamError, UpstreamMalformed, UpstreamRejected, UpstreamTimeout,
    UpstreamUnavailable,
)
from server.integrations.caas import (
    CaasChargeDeclined, CaasDuplicate, CaasInsufficientBalance, CaasTemporaryError,
)
from server.integrations.ecare import ECareAuthError, ECareInvalid
from server.store.ledger import RechargeRecord, StateConflict

from .ecare_codes import parse_number_type, parse_operator
from .lease_keeper import RechargeLeaseKeeper
from .saga_steps import Next, Outcome, S, SagaSteps

log = structlog.get_logger("alap.recharge")

# CAAS answers that say the debit was refused before anything was charged: authentication /
# IP not provisioned (E1313, E1303), a field we sent is wrong (E1312, E1325, E1317), the
# subscriber or application may not be charged (E1328, E1342, E1343), and the charging
# declines (E1308, E1326; a decline of a repeated externalTrxId is the answer to the first
# call, under the documented CAAS idempotency assumption). HTTP 400/401/403/404/405/415
# without a BDApps code: the gateway refused the request itself. Any other code (E1601
# "unexpected error", codes we do not know) leaves the outcome unknown: asked again, same id.
DEBIT_REFUSED_CODES = frozenset({"E1313", "E1303", "E1312", "E1325", "E1317", "E1328", "E1342", "E1343",
                                 "E1308", "E1326", "400", "401", "403", "404", "405", "415"})


class DebitSteps(SagaSteps):
    # -- REQUESTED ---------------------------------------------------------------------------------
    async def _requested(self, record: RechargeRecord, lease: RechargeLeaseKeeper | None) -> Outcome:
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
        return Next(await self._move(record, S.DEBITING, note))

    # -- DEBITING ----------------------------------------------------------------------------------
    @staticmethod
    def _debit_in_flight(record: RechargeRecord) -> bool:
        """An earlier debit call may have reached CAAS and its answer was never recorded (the
        worker died, was cancelled, or lost its lease during the call)."""
        if record.debit_maybe_sent is None:  # entered DEBITING before the flag existed
            return record.attempts > 0
        return record.debit_maybe_sent

    async def _debiting(self, record: RechargeRecord, lease: RechargeLeaseKeeper | None) -> Outcome:
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
        return Next(moved)

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
            return Next(moved)
        if current.state is S.NEEDS_REVIEW and not current.caas_trx_id:
            return Next(await self._update(current, caas_trx_id=caas_trx_id, note=f"{note} (charged)"))
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
