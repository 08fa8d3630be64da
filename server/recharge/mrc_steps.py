"""The saga's recharge half: DEBITED, RECHARGING (the eCare MRC under the record's refid,
MRCSTATUS first when an earlier MRC may have landed) and SUBMITTED (MRCSTATUS polls until
SUCCESS or FAILED). The rules every step keeps are in saga.py's docstring."""
from __future__ import annotations

import structlog

from server.integrations.base import (
    UpstreamConnectError, UpstreamError, UpstreamMalformed, UpstreamRejected, UpstreamTimeout,
    UpstreamUnavailable,
)
from server.integrations.ecare import (
    ECareDuplicate, ECareInvalidRef, ECareLowBalance, ECareMaintenance, ECareRejected,
    RechargeState as ECareState, RechargeStatus,
)
from server.store.ledger import RechargeRecord

from .ecare_codes import ecare_operator, parse_number_type
from .lease_keeper import RechargeLeaseKeeper
from .saga_steps import Next, Outcome, S, SagaSteps, StepResult

log = structlog.get_logger("alap.recharge")


class MrcSteps(SagaSteps):
    # -- DEBITED -----------------------------------------------------------------------------------
    async def _debited(self, record: RechargeRecord, lease: RechargeLeaseKeeper | None) -> Outcome:
        note = f"recharge {record.recipient} {record.amount} under refid {record.refid}"
        return Next(await self._move(record, S.RECHARGING, note, recharge_maybe_sent=False))

    # -- RECHARGING --------------------------------------------------------------------------------
    async def _recharging(self, record: RechargeRecord, lease: RechargeLeaseKeeper | None) -> Outcome:
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
            return Next(record)
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
    async def _submitted(self, record: RechargeRecord, lease: RechargeLeaseKeeper | None) -> Outcome:
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

    async def _poll_later(self, record: RechargeRecord, polls: int, note: str) -> StepResult:
        return await self._later(record, note, base=self.policy.poll_delay, maximum=self.policy.poll_max_delay,
                                 n=polls + 1, polls=polls)
