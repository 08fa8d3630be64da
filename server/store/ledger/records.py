"""Recharge records: states, the record and its history, JSON codec, and `new_record`."""
from __future__ import annotations

import itertools
import os
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Iterable, Iterator

import msgspec

from server.money import parse_taka
from server.msisdn import is_local

class RechargeState(str, Enum):
    REQUESTED = "REQUESTED"  # written by the USSD action; keys generated; nothing called yet
    DEBITING = "DEBITING"  # the CAAS direct debit under external_trx_id may have been sent
    DEBITED = "DEBITED"  # CAAS confirmed the debit: the subscriber's money is taken
    RECHARGING = "RECHARGING"  # the eCare MRC under refid may have been sent
    SUBMITTED = "SUBMITTED"  # eCare has the recharge (RECEIVED or DUPLICATE): polling MRCSTATUS
    COMPLETED = "COMPLETED"  # MRCSTATUS SUCCESS
    FAILED_NOT_CHARGED = "FAILED_NOT_CHARGED"  # stopped before any money was taken
    REFUND_REQUIRED = "REFUND_REQUIRED"  # debited, and the recharge definitively failed
    NEEDS_REVIEW = "NEEDS_REVIEW"  # an outcome could not be known: an operator decides
    RESOLVED = "RESOLVED"  # an operator settled a REFUND_REQUIRED / NEEDS_REVIEW record

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({
    RechargeState.COMPLETED, RechargeState.FAILED_NOT_CHARGED, RechargeState.REFUND_REQUIRED,
    RechargeState.NEEDS_REVIEW, RechargeState.RESOLVED,
})
ACTIVE_STATES = tuple(s for s in RechargeState if s not in FINAL_STATES)
ATTENTION_STATES = frozenset({RechargeState.REFUND_REQUIRED, RechargeState.NEEDS_REVIEW})


class StateConflict(Exception):
    """The record is not in the expected state (another writer moved it), or does not exist."""

    def __init__(self, record_id: str, expected: Iterable[RechargeState], actual: RechargeState | None) -> None:
        self.record_id = record_id
        self.expected = frozenset(expected)
        self.actual = actual
        wanted = "/".join(sorted(s.value for s in self.expected))
        got = actual.value if actual is not None else "no record"
        super().__init__(f"recharge {record_id}: expected {wanted}, found {got}")


class LeaseLost(Exception):
    """A write was fenced by a lease that is no longer the writer's (it expired, and another
    worker may hold the record): nothing was written. The writer must stop and write nothing."""

    def __init__(self, record_id: str, detail: str = "") -> None:
        self.record_id = record_id
        super().__init__(f"recharge {record_id}: lease lost" + (f" ({detail})" if detail else ""))


class HistoryEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    at: float  # epoch seconds
    state: RechargeState
    note: str = ""
    by: str = ""  # worker id, "action", "operator:<name>"


class RechargeRecord(msgspec.Struct, kw_only=True):
    id: str
    idempotency_key: str
    state: RechargeState
    payer: str  # the dialling subscriber's address exactly as BDApps gave it (CAAS subscriberId)
    payer_msisdn: str | None  # 01XXXXXXXXX when known (not masked), else None
    recipient: str  # 01XXXXXXXXX
    operator: str  # eCare operator name or code, as the flow gave it
    number_type: str  # eCare number type name or code
    amount: str  # whole taka, exact decimal string
    language: str  # bn | en: the receipts' language
    external_trx_id: str  # CAAS externalTrxId, generated at creation, reused on every retry
    refid: str  # eCare refid, generated at creation, reused on every retry
    ecare_trx_id: str | None = None  # TRXID / RECHARGE_TRXID
    caas_trx_id: str | None = None  # CAAS internalTrxId of the debit
    history: list[HistoryEntry] = []
    created_at: float
    updated_at: float
    attempts: int = 0  # calls made in the current state (reset on every transition)
    note: str = ""  # the last note (operator-facing)
    reason: str = ""  # why it ended where it did: wallet_low, declined, insufficient_balance, ...
    debit_unknown: int = 0  # debit calls whose outcome could not be known
    # A debit under external_trx_id was sent and its answer is not recorded yet (set by the write
    # before the call, cleared by every write of an answer). None: the record entered DEBITING
    # before this field existed; the saga then reads `attempts > 0` as "maybe sent".
    debit_maybe_sent: bool | None = None
    step_errors: int = 0  # consecutive saga steps that failed with an unexpected (non-upstream) error
    recharge_unknown: int = 0  # MRC calls whose outcome could not be known
    recharge_maybe_sent: bool = False  # an MRC under refid may have reached eCare
    polls: int = 0  # MRCSTATUS polls in SUBMITTED
    ecare_status: str | None = None  # the last MRCSTATUS word
    next_at: float | None = None  # when the worker looks at it again (informational)
    receipts_done: bool = False  # the SMS receipts for the final state are out
    payer_receipt: str | None = None  # "<status> <message id>" of the payer's receipt
    recipient_receipt: str | None = None
    version: int = 0  # compare-and-set counter, +1 on every write

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def amount_decimal(self) -> Decimal:
        return Decimal(self.amount)

    @property
    def state_since(self) -> float:
        """When the record entered its current state (history lines that repeat the state,
        e.g. SUBMITTED -> SUBMITTED on a new MRCSTATUS word, do not restart the clock)."""
        since = self.created_at
        for entry in reversed(self.history):
            if entry.state is not self.state:
                break
            since = entry.at
        return since


_decoder = msgspec.json.Decoder(RechargeRecord)


def decode_record_or_none(data: bytes | str | None) -> RechargeRecord | None:
    """None for a missing (empty) value, else the record."""
    if not data:
        return None
    return _decoder.decode(data)


def encode_record(record: RechargeRecord) -> bytes:
    return msgspec.json.encode(record)


def decode_record(data: bytes | str) -> RechargeRecord:
    return _decoder.decode(data)


# --- record creation -------------------------------------------------------------------------

_key_sequence: Iterator[int]


def _draw_key_sequence() -> None:
    global _key_sequence
    _key_sequence = itertools.count(secrets.randbelow(1_000_000))


_draw_key_sequence()
# A forked worker draws its own start: two workers counting on from the master's value would
# make the same keys in the same millisecond.
os.register_at_fork(after_in_child=_draw_key_sequence)


def _numeric_key() -> str:
    """19 digits: epoch milliseconds (13) + 6 digits counting on from a random start. Fits a
    signed 64-bit integer (the eCare sample refid is numeric) and 32 characters (CAAS
    externalTrxId is String(32)). Keys one process makes never repeat (six random digits could,
    for two keys in the same millisecond); another process's may, and the ledger then draws
    again (server/store/ledger/base.py `create`)."""
    return f"{int(time.time() * 1000):013d}{next(_key_sequence) % 1_000_000:06d}"


def new_record_id() -> str:
    """Short, roughly time-ordered, typeable by an operator: 8 hex of seconds + 6 random hex."""
    return f"{int(time.time()):08x}{secrets.token_hex(3)}"


def new_record(*, idempotency_key: str, payer: str, payer_msisdn: str | None, recipient: str, operator: str,
               number_type: str, amount: Decimal | int | str, language: str, now: float | None = None,
               by: str = "action") -> RechargeRecord:
    """A REQUESTED record with its id and both money keys generated (nothing is called yet).

    Raises ValueError for an empty idempotency key or payer, a recipient that is not
    01XXXXXXXXX, or an amount that is not a positive whole number of taka (eCare recharges
    whole taka; CAAS would accept paisa, but we never debit what we cannot recharge)."""
    if not idempotency_key or not idempotency_key.strip():
        raise ValueError("idempotency_key is required")
    if not payer or not payer.strip():
        raise ValueError("payer is required")
    recipient = recipient.strip()
    if not is_local(recipient):
        raise ValueError(f"recipient must be 01XXXXXXXXX, got {recipient!r}")
    if payer_msisdn is not None:
        payer_msisdn = payer_msisdn.strip()
        if not is_local(payer_msisdn):
            raise ValueError(f"payer_msisdn must be 01XXXXXXXXX or None, got {payer_msisdn!r}")
    value = parse_taka(amount, whole=True)
    if not str(operator).strip() or not str(number_type).strip():
        raise ValueError("operator and number_type are required")
    at = time.time() if now is None else now
    return RechargeRecord(
        id=new_record_id(), idempotency_key=idempotency_key.strip(), state=RechargeState.REQUESTED,
        payer=payer, payer_msisdn=payer_msisdn, recipient=recipient, operator=str(operator).strip(),
        number_type=str(number_type).strip(), amount=str(int(value)), language=language or "bn",
        external_trx_id=_numeric_key(), refid=_numeric_key(),
        history=[HistoryEntry(at=at, state=RechargeState.REQUESTED, note="requested", by=by)],
        created_at=at, updated_at=at)


def _states(expected: RechargeState | Iterable[RechargeState]) -> frozenset[RechargeState]:
    if isinstance(expected, RechargeState):
        return frozenset({expected})
    return frozenset(RechargeState(s) for s in expected)


# Fields a caller may not set through transition()/update(): they are the ledger's own.
_PROTECTED = frozenset({"id", "idempotency_key", "external_trx_id", "refid", "history", "created_at",
                        "updated_at", "version", "state"})


def _changed(record: RechargeRecord, now: float, new_state: RechargeState | None, note: str, by: str,
             fields: dict[str, Any]) -> RechargeRecord:
    bad = set(fields) & _PROTECTED
    if bad:
        raise TypeError(f"cannot set {', '.join(sorted(bad))} through the ledger API")
    unknown = set(fields) - set(RechargeRecord.__struct_fields__)
    if unknown:
        raise TypeError(f"unknown record field(s): {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = dict(fields)
    changes["updated_at"] = now
    changes["version"] = record.version + 1
    if new_state is not None:
        changes["state"] = new_state
        changes["history"] = [*record.history, HistoryEntry(at=now, state=new_state, note=note, by=by)]
        changes.setdefault("attempts", 0)
        if note:
            changes["note"] = note
    return msgspec.structs.replace(record, **changes)


@dataclass(frozen=True)
class RechargeLease:
    """The right to work on one record until `expires_at` (renew it before long calls)."""

    record_id: str
    owner: str  # "<worker id>|<token>"
    expires_at: float

    @property
    def worker_id(self) -> str:
        return self.owner.rsplit("|", 1)[0]


def new_lease_owner(worker_id: str) -> str:
    if "|" in worker_id:
        raise ValueError("a worker id cannot contain '|'")
    return f"{worker_id}|{secrets.token_hex(6)}"


