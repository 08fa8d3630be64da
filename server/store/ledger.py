"""The recharge ledger: one durable record per money request, its history, and the work queue.

A record is written (state REQUESTED, with BOTH money keys, the CAAS `externalTrxId` and the
eCare `refid`, already generated) before anything else happens, and every later step writes
its new state before the outbound call it announces. A retry of a call reuses the key that is
in the record, so repeating any step can never move money twice (design.md, "Money moves only
with an identifier written to the ledger before the call").

States (the saga in server/recharge/saga.py drives them; docs/recharge.md for operators):

    REQUESTED ──▶ DEBITING ──▶ DEBITED ──▶ RECHARGING ──▶ SUBMITTED ──▶ COMPLETED
        │             │                        │              │
        ▼             ├──▶ FAILED_NOT_CHARGED  ├──▶ REFUND_REQUIRED ◀──┤
    FAILED_NOT_CHARGED└──▶ NEEDS_REVIEW        └──▶ NEEDS_REVIEW  ◀────┘
                                   REFUND_REQUIRED / NEEDS_REVIEW ──(operator)──▶ RESOLVED

`transition()` is a compare-and-set on the current state (and on the record's version, so
two writers never interleave a read-modify-write) that appends a timestamped history entry.
`update()` is the same compare-and-set without a history entry, for counters and schedules
inside one state (retry counts, the next MRCSTATUS poll, receipts sent).

The queue: records due for work, by due time. `claim()` hands due records out under a lease
(one key per record, with an expiry), so several workers never work one record at once and a
crashed worker's records come back when its leases expire (or at once when a worker with the
same id starts again: `resume()`). A record leaves the queue only when it is final and its
SMS receipts are out. `resume()` also puts back any non-final record that is missing from the
queue (a crash between `create()` and `enqueue()`).

Backends: memory (one process: `alap dev` without Redis, tests) and Redis next to the store
(same client, same prefix). Redis keys all carry the hash tag `{ledger}` so that every script
touches one slot (Redis Cluster puts the whole ledger on one node):

    {prefix}{ledger}:r:<id>        hash: data (record JSON), state, v (version)
    {prefix}{ledger}:k:<key>       idempotency key -> id
    {prefix}{ledger}:x:<trx id>    externalTrxId -> id (uniqueness)
    {prefix}{ledger}:f:<refid>     refid -> id (uniqueness)
    {prefix}{ledger}:s:<STATE>     sorted set of ids in that state (score: created_at)
    {prefix}{ledger}:all           sorted set of every id (score: created_at)
    {prefix}{ledger}:q             the work queue: sorted set id -> due time (epoch seconds)
    {prefix}{ledger}:l:<id>        the lease: "<worker id>|<token>", expires (PX)

Nothing in the ledger expires: these are money records (docs/recharge.md, persistence).
"""
from __future__ import annotations

import re
import secrets
import time
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TYPE_CHECKING, Any, Iterable

import msgspec

from .base import StoreUnavailable
from .redis_errors import redis_guard

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .base import Store


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


_encode = msgspec.json.encode
_decoder = msgspec.json.Decoder(RechargeRecord)


def _decode(data: bytes | str | None) -> RechargeRecord | None:
    if not data:
        return None
    return _decoder.decode(data)


def encode_record(record: RechargeRecord) -> bytes:
    return _encode(record)


def decode_record(data: bytes | str) -> RechargeRecord:
    return _decoder.decode(data)


# --- record creation -------------------------------------------------------------------------

_LOCAL_MSISDN = re.compile(r"^01[3-9]\d{8}$")


def _numeric_key() -> str:
    """19 digits: epoch milliseconds (13) + 6 random digits. Fits a signed 64-bit integer (the
    eCare sample refid is numeric) and 32 characters (CAAS externalTrxId is String(32))."""
    return f"{int(time.time() * 1000):013d}{secrets.randbelow(1_000_000):06d}"


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
    if not _LOCAL_MSISDN.match(recipient):
        raise ValueError(f"recipient must be 01XXXXXXXXX, got {recipient!r}")
    if payer_msisdn is not None:
        payer_msisdn = payer_msisdn.strip()
        if not _LOCAL_MSISDN.match(payer_msisdn):
            raise ValueError(f"payer_msisdn must be 01XXXXXXXXX or None, got {payer_msisdn!r}")
    if isinstance(amount, (float, bool)):
        raise TypeError("amount must be Decimal, int or str, not float")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"amount is not a number: {amount!r}") from None
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        raise ValueError(f"amount must be a positive whole number of taka: {amount!r}")
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
class LedgerLease:
    """The right to work on one record until `expires_at` (renew it before long calls)."""

    record_id: str
    owner: str  # "<worker id>|<token>"
    expires_at: float

    @property
    def worker_id(self) -> str:
        return self.owner.rsplit("|", 1)[0]


def _owner(worker_id: str) -> str:
    if "|" in worker_id:
        raise ValueError("a worker id cannot contain '|'")
    return f"{worker_id}|{secrets.token_hex(6)}"


class Ledger(ABC):
    """Recharge records (memory or Redis), their history and the durable work queue."""

    name = "abstract"

    # -- records -------------------------------------------------------------------------------
    async def create(self, record: RechargeRecord, *, enqueue: bool = False) -> tuple[RechargeRecord, bool]:
        """Store a new record; idempotent on `idempotency_key`: a second create with the same key
        returns the existing record and False (whatever the second record holds).

        In the rare case that a generated externalTrxId or refid is already in the ledger, fresh
        ones are drawn (nothing has been called with them yet). `enqueue=True` also queues the
        record, due now, in the same step."""
        for _ in range(5):
            outcome, existing_id = await self._insert(record, enqueue)
            if outcome == "created":
                return record, True
            if outcome == "exists":
                existing = await self.get(existing_id or "")
                if existing is not None:
                    return existing, False
                raise StoreUnavailable(f"ledger: idempotency key points at a missing record {existing_id}")
            # "collision": a money key is taken
            record = msgspec.structs.replace(record, external_trx_id=_numeric_key(), refid=_numeric_key(),
                                             id=new_record_id())
        raise RuntimeError("could not draw unique money keys")

    @abstractmethod
    async def _insert(self, record: RechargeRecord, enqueue: bool) -> tuple[str, str | None]:
        """("created", None) | ("exists", id of the record with that key) | ("collision", None)."""

    @abstractmethod
    async def get(self, record_id: str) -> RechargeRecord | None: ...

    @abstractmethod
    async def find(self, idempotency_key: str) -> RechargeRecord | None:
        """The record created under this idempotency key, if any."""

    @abstractmethod
    async def _swap(self, old: RechargeRecord, new: RechargeRecord) -> bool:
        """Replace `old` by `new` if the stored version is still `old.version`."""

    async def transition(self, record_id: str, expected: RechargeState | Iterable[RechargeState],
                         new: RechargeState, note: str = "", *, by: str = "", now: float | None = None,
                         **fields: Any) -> RechargeRecord:
        """Compare-and-set the state: from one of `expected` to `new`, appending a timestamped
        history entry (and setting `fields`). Raises StateConflict on another current state."""
        return await self._write(record_id, _states(expected), RechargeState(new), note, by, now, fields)

    async def update(self, record_id: str, expected: RechargeState | Iterable[RechargeState], *,
                     now: float | None = None, **fields: Any) -> RechargeRecord:
        """Set fields while the record stays in one of `expected` (no history entry)."""
        return await self._write(record_id, _states(expected), None, "", "", now, fields)

    async def _write(self, record_id: str, expected: frozenset[RechargeState], new: RechargeState | None,
                     note: str, by: str, now: float | None, fields: dict[str, Any]) -> RechargeRecord:
        for _ in range(20):
            current = await self.get(record_id)
            if current is None or current.state not in expected:
                raise StateConflict(record_id, expected, current.state if current else None)
            at = time.time() if now is None else now
            changed = _changed(current, at, new, note, by, fields)
            if await self._swap(current, changed):
                return changed
        raise StateConflict(record_id, expected, None)

    async def resolve(self, record_id: str, note: str, *, by: str = "operator") -> RechargeRecord:
        """Operator: a REFUND_REQUIRED / NEEDS_REVIEW record was settled outside (refund made,
        recharge confirmed with eCare...). Moves it to RESOLVED with the note in its history."""
        if not note or not note.strip():
            raise ValueError("a note saying what was done is required")
        return await self.transition(record_id, ATTENTION_STATES, RechargeState.RESOLVED, note.strip(),
                                     by=by, receipts_done=True)

    @abstractmethod
    async def list(self, state: RechargeState | None = None, limit: int = 100) -> list[RechargeRecord]:
        """Records (in one state, or all), newest first."""

    @abstractmethod
    async def counts(self) -> dict[RechargeState, int]:
        """How many records are in each state."""

    # -- queue -----------------------------------------------------------------------------------
    @abstractmethod
    async def enqueue(self, record_id: str, due_at: float | None = None) -> None:
        """Queue a record for the worker, due at `due_at` (default now). A record a worker holds
        is not handed to another one before its lease ends, whatever its due time."""

    @abstractmethod
    async def claim(self, worker_id: str, limit: int = 1, lease: float = 60.0,
                    now: float | None = None) -> list[LedgerLease]:
        """Take up to `limit` due records, each under a lease of `lease` seconds."""

    @abstractmethod
    async def renew(self, lease: LedgerLease, seconds: float) -> LedgerLease | None:
        """Extend a lease we still hold; None when it expired and may be someone else's."""

    @abstractmethod
    async def release(self, lease: LedgerLease, due_at: float | None) -> bool:
        """Give the record back: queued again at `due_at`, or out of the queue (None: the record
        is final and its receipts are out). False when the lease was no longer ours (nothing
        is changed then)."""

    @abstractmethod
    async def queued(self) -> dict[str, float]:
        """The queue: record id -> due time (inspection and tests)."""

    @abstractmethod
    async def _break_leases(self, worker_id: str) -> int:
        """Drop the leases `worker_id` holds and make those records due now."""

    @abstractmethod
    async def _ensure_queued(self, record_ids: list[str], now: float) -> int:
        """Queue (due now) the ids that are not in the queue; returns how many were added."""

    async def resume(self, worker_id: str | None = None, *, now: float | None = None) -> int:
        """Start-up (and periodic) recovery. With `worker_id`: a worker of that id is starting,
        so no earlier process of that id is alive: its leases are dropped and their records
        are due at once. Then every record in a non-final state that is missing from the queue
        is queued. Returns the number of records made due."""
        at = time.time() if now is None else now
        count = await self._break_leases(worker_id) if worker_id else 0
        ids: list[str] = []
        for state in ACTIVE_STATES:
            ids += await self._ids_in(state)
        return count + await self._ensure_queued(ids, at)

    @abstractmethod
    async def _ids_in(self, state: RechargeState) -> list[str]: ...

    async def close(self) -> None:
        return None


# --- memory ------------------------------------------------------------------------------------

class MemoryLedger(Ledger):
    """In-process ledger (one process only: `alap dev` without Redis, tests)."""

    name = "memory"

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.keys: dict[str, str] = {}
        self.money_keys: set[str] = set()
        self.queue: dict[str, float] = {}
        self.leases: dict[str, tuple[str, float]] = {}  # id -> (owner, expires at, epoch)

    async def _insert(self, record: RechargeRecord, enqueue: bool) -> tuple[str, str | None]:
        existing = self.keys.get(record.idempotency_key)
        if existing is not None:
            return "exists", existing
        money = {"x:" + record.external_trx_id, "f:" + record.refid}
        if money & self.money_keys or record.id in self.records:
            return "collision", None
        self.keys[record.idempotency_key] = record.id
        self.money_keys |= money
        self.records[record.id] = _encode(record)
        if enqueue:
            self.queue[record.id] = time.time()
        return "created", None

    async def get(self, record_id: str) -> RechargeRecord | None:
        return _decode(self.records.get(record_id))

    async def find(self, idempotency_key: str) -> RechargeRecord | None:
        record_id = self.keys.get(idempotency_key)
        return await self.get(record_id) if record_id else None

    async def _swap(self, old: RechargeRecord, new: RechargeRecord) -> bool:
        current = _decode(self.records.get(old.id))
        if current is None or current.version != old.version:
            return False
        self.records[old.id] = _encode(new)
        return True

    def _all(self) -> list[RechargeRecord]:
        return [r for r in (_decode(v) for v in self.records.values()) if r is not None]

    async def list(self, state: RechargeState | None = None, limit: int = 100) -> list[RechargeRecord]:
        found = [r for r in self._all() if state is None or r.state is RechargeState(state)]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return found[:limit]

    async def counts(self) -> dict[RechargeState, int]:
        out = {s: 0 for s in RechargeState}
        for record in self._all():
            out[record.state] += 1
        return out

    async def _ids_in(self, state: RechargeState) -> list[str]:
        return [r.id for r in self._all() if r.state is state]

    def _lease_live(self, record_id: str, now: float) -> tuple[str, float] | None:
        held = self.leases.get(record_id)
        if held is not None and held[1] <= now:
            del self.leases[record_id]
            return None
        return held

    async def enqueue(self, record_id: str, due_at: float | None = None) -> None:
        self.queue[record_id] = time.time() if due_at is None else due_at

    async def claim(self, worker_id: str, limit: int = 1, lease: float = 60.0,
                    now: float | None = None) -> list[LedgerLease]:
        at = time.time() if now is None else now
        owner = _owner(worker_id)
        out: list[LedgerLease] = []
        for record_id, due in sorted(self.queue.items(), key=lambda kv: kv[1]):
            if due > at or len(out) >= limit:
                break
            if self._lease_live(record_id, at) is not None:
                continue
            self.leases[record_id] = (owner, at + lease)
            self.queue[record_id] = at + lease
            out.append(LedgerLease(record_id, owner, at + lease))
        return out

    async def renew(self, lease: LedgerLease, seconds: float) -> LedgerLease | None:
        at = time.time()
        held = self._lease_live(lease.record_id, at)
        if held is None or held[0] != lease.owner:
            return None
        self.leases[lease.record_id] = (lease.owner, at + seconds)
        if lease.record_id in self.queue:
            self.queue[lease.record_id] = max(self.queue[lease.record_id], at + seconds)
        return LedgerLease(lease.record_id, lease.owner, at + seconds)

    async def release(self, lease: LedgerLease, due_at: float | None) -> bool:
        held = self._lease_live(lease.record_id, time.time())
        if held is None or held[0] != lease.owner:
            return False
        del self.leases[lease.record_id]
        if due_at is None:
            self.queue.pop(lease.record_id, None)
        else:
            self.queue[lease.record_id] = due_at
        return True

    async def queued(self) -> dict[str, float]:
        return dict(self.queue)

    async def _break_leases(self, worker_id: str) -> int:
        at = time.time()
        mine = [rid for rid, (owner, _) in self.leases.items() if owner.rsplit("|", 1)[0] == worker_id]
        for record_id in mine:
            del self.leases[record_id]
            self.queue[record_id] = at
        return len(mine)

    async def _ensure_queued(self, record_ids: list[str], now: float) -> int:
        added = 0
        for record_id in record_ids:
            if record_id not in self.queue:
                self.queue[record_id] = now
                added += 1
        return added


# --- redis -------------------------------------------------------------------------------------

# KEYS: 1 idempotency key, 2 record, 3 state index, 4 all index, 5 queue, 6 trx id key, 7 refid key
# ARGV: 1 id, 2 data, 3 state, 4 version, 5 created_at, 6 enqueue (0/1), 7 due
_INSERT = """
local existing = redis.call('GET', KEYS[1])
if existing then return {'exists', existing} end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[6]) == 1
   or redis.call('EXISTS', KEYS[7]) == 1 then return {'collision'} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[6], ARGV[1])
redis.call('SET', KEYS[7], ARGV[1])
redis.call('HSET', KEYS[2], 'data', ARGV[2], 'state', ARGV[3], 'v', ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
if ARGV[6] == '1' then redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1]) end
return {'created'}
"""

# KEYS: 1 record, 2 old state index, 3 new state index
# ARGV: 1 expected version, 2 data, 3 new state, 4 new version, 5 id, 6 created_at
_SWAP = """
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'state', ARGV[3], 'v', ARGV[4])
if KEYS[2] ~= KEYS[3] then
  redis.call('ZREM', KEYS[2], ARGV[5])
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
end
return 1
"""

# KEYS: 1 queue. ARGV: 1 now, 2 limit, 3 lease ms, 4 owner, 5 lease key prefix, 6 scan size
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[6]))
local out = {}
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[3]) / 1000
for _, id in ipairs(ids) do
  if redis.call('SET', ARGV[5] .. id, ARGV[4], 'NX', 'PX', ARGV[3]) then
    redis.call('ZADD', KEYS[1], until_, id)
    table.insert(out, id)
    if #out >= tonumber(ARGV[2]) then break end
  end
end
return out
"""

# KEYS: 1 lease, 2 queue. ARGV: 1 owner, 2 lease ms, 3 id, 4 until (epoch)
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[4], ARGV[3])
return 1
"""

# KEYS: 1 lease, 2 queue. ARGV: 1 owner, 2 id, 3 due ('' = remove from the queue)
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[3] == '' then redis.call('ZREM', KEYS[2], ARGV[2]) else redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) end
return 1
"""

# KEYS: 1 queue. ARGV: 1 now, 2.. ids
_ENSURE = """
local added = 0
for i = 2, #ARGV do added = added + redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[i]) end
return added
"""


class RedisLedger(Ledger):
    """The ledger on an existing redis.asyncio client (the RedisStore's), under `prefix`."""

    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "alap:") -> None:
        from .redis_backend import _NodeScript, is_cluster

        self.redis = client
        self.prefix = prefix
        self.base = f"{prefix}{{ledger}}:"
        script = (lambda text: _NodeScript(client, text)) if is_cluster(client) else client.register_script
        self._insert_script = script(_INSERT)
        self._swap_script = script(_SWAP)
        self._claim_script = script(_CLAIM)
        self._renew_script = script(_RENEW)
        self._release_script = script(_RELEASE)
        self._ensure_script = script(_ENSURE)

    # -- keys --------------------------------------------------------------------------------------
    def _record_key(self, record_id: str) -> str:
        return f"{self.base}r:{record_id}"

    def _state_key(self, state: RechargeState) -> str:
        return f"{self.base}s:{RechargeState(state).value}"

    @property
    def _all_key(self) -> str:
        return f"{self.base}all"

    @property
    def _queue_key(self) -> str:
        return f"{self.base}q"

    @property
    def _lease_prefix(self) -> str:
        return f"{self.base}l:"

    @staticmethod
    def _guard():
        return redis_guard()

    @staticmethod
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    # -- records -----------------------------------------------------------------------------------
    async def _insert(self, record: RechargeRecord, enqueue: bool) -> tuple[str, str | None]:
        keys = [f"{self.base}k:{record.idempotency_key}", self._record_key(record.id), self._state_key(record.state),
                self._all_key, self._queue_key, f"{self.base}x:{record.external_trx_id}",
                f"{self.base}f:{record.refid}"]
        args = [record.id, _encode(record), record.state.value, record.version, repr(record.created_at),
                "1" if enqueue else "0", repr(time.time())]
        async with self._guard():
            result = await self._insert_script(keys=keys, args=args)
        outcome = self._text(result[0])
        return outcome, (self._text(result[1]) if len(result) > 1 else None)

    async def get(self, record_id: str) -> RechargeRecord | None:
        async with self._guard():
            data = await self.redis.hget(self._record_key(record_id), "data")
        return _decode(data)

    async def find(self, idempotency_key: str) -> RechargeRecord | None:
        async with self._guard():
            record_id = await self.redis.get(f"{self.base}k:{idempotency_key}")
        return await self.get(self._text(record_id)) if record_id else None

    async def _swap(self, old: RechargeRecord, new: RechargeRecord) -> bool:
        keys = [self._record_key(old.id), self._state_key(old.state), self._state_key(new.state)]
        args = [str(old.version), _encode(new), new.state.value, str(new.version), old.id, repr(old.created_at)]
        async with self._guard():
            return bool(await self._swap_script(keys=keys, args=args))

    async def _records(self, ids: list[Any]) -> list[RechargeRecord]:
        if not ids:
            return []
        async with self._guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                for record_id in ids:
                    pipe.hget(self._record_key(self._text(record_id)), "data")
                values = await pipe.execute()
        return [r for r in (_decode(v) for v in values) if r is not None]

    async def list(self, state: RechargeState | None = None, limit: int = 100) -> list[RechargeRecord]:
        key = self._all_key if state is None else self._state_key(state)
        async with self._guard():
            ids = await self.redis.zrevrange(key, 0, max(limit, 1) - 1)
        return await self._records(ids)

    async def counts(self) -> dict[RechargeState, int]:
        async with self._guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                for state in RechargeState:
                    pipe.zcard(self._state_key(state))
                values = await pipe.execute()
        return {state: int(n) for state, n in zip(RechargeState, values)}

    async def _ids_in(self, state: RechargeState) -> list[str]:
        async with self._guard():
            return [self._text(i) for i in await self.redis.zrange(self._state_key(state), 0, -1)]

    # -- queue -------------------------------------------------------------------------------------
    async def enqueue(self, record_id: str, due_at: float | None = None) -> None:
        async with self._guard():
            await self.redis.zadd(self._queue_key, {record_id: time.time() if due_at is None else due_at})

    async def claim(self, worker_id: str, limit: int = 1, lease: float = 60.0,
                    now: float | None = None) -> list[LedgerLease]:
        at = time.time() if now is None else now
        owner = _owner(worker_id)
        lease_ms = max(1, int(lease * 1000))
        async with self._guard():
            ids = await self._claim_script(keys=[self._queue_key],
                                           args=[repr(at), limit, lease_ms, owner, self._lease_prefix,
                                                 limit * 4 + 16])
        return [LedgerLease(self._text(i), owner, at + lease) for i in ids]

    async def renew(self, lease: LedgerLease, seconds: float) -> LedgerLease | None:
        until = time.time() + seconds
        async with self._guard():
            ok = await self._renew_script(keys=[self._lease_prefix + lease.record_id, self._queue_key],
                                          args=[lease.owner, max(1, int(seconds * 1000)), lease.record_id,
                                                repr(until)])
        return LedgerLease(lease.record_id, lease.owner, until) if ok else None

    async def release(self, lease: LedgerLease, due_at: float | None) -> bool:
        async with self._guard():
            return bool(await self._release_script(
                keys=[self._lease_prefix + lease.record_id, self._queue_key],
                args=[lease.owner, lease.record_id, "" if due_at is None else repr(due_at)]))

    async def queued(self) -> dict[str, float]:
        async with self._guard():
            items = await self.redis.zrange(self._queue_key, 0, -1, withscores=True)
        return {self._text(i): float(s) for i, s in items}

    async def _break_leases(self, worker_id: str) -> int:
        count = 0
        now = time.time()
        async with self._guard():
            async for key in self.redis.scan_iter(match=self._lease_prefix + "*", count=500):
                owner = await self.redis.get(key)
                if owner is None or self._text(owner).rsplit("|", 1)[0] != worker_id:
                    continue
                record_id = self._text(key)[len(self._lease_prefix):]
                # Only our own earlier incarnation's lease: delete it if it still holds that value.
                released = await self._release_script(keys=[key, self._queue_key],
                                                      args=[self._text(owner), record_id, repr(now)])
                count += int(bool(released))
        return count

    async def _ensure_queued(self, record_ids: list[str], now: float) -> int:
        added = 0
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start:start + 500]
            async with self._guard():
                added += int(await self._ensure_script(keys=[self._queue_key], args=[repr(now), *chunk]))
        return added


_memory_ledgers: "weakref.WeakKeyDictionary[Any, MemoryLedger]" = weakref.WeakKeyDictionary()
_redis_ledgers: "weakref.WeakKeyDictionary[Any, RedisLedger]" = weakref.WeakKeyDictionary()


def open_ledger(store: Store | None) -> Ledger:
    """The ledger next to a store: Redis (the store's client and prefix) for a RedisStore, else
    one in-process ledger per store object (so an action and an in-process worker share it)."""
    client = getattr(store, "redis", None)
    if client is not None:
        ledger = _redis_ledgers.get(store)
        if ledger is None:
            ledger = _redis_ledgers[store] = RedisLedger(client, getattr(store, "prefix", "alap:"))
        return ledger
    if store is None:
        return MemoryLedger()
    ledger = _memory_ledgers.get(store)
    if ledger is None:
        ledger = _memory_ledgers[store] = MemoryLedger()
    return ledger


__all__ = [
    "ACTIVE_STATES", "ATTENTION_STATES", "FINAL_STATES", "HistoryEntry", "Ledger", "LedgerLease", "MemoryLedger",
    "RechargeRecord", "RechargeState", "RedisLedger", "StateConflict", "decode_record", "encode_record",
    "new_record", "new_record_id", "open_ledger",
]
