"""The ledger interface: records, compare-and-set transitions with history, the work queue."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Iterable

import msgspec

from ..base import StoreUnavailable
from .records import (ACTIVE_STATES, ATTENTION_STATES, LeaseLost, RechargeLease, RechargeRecord, RechargeState,
                      StateConflict, _changed, _numeric_key, _states, new_record_id)

# _swap outcomes
SWAPPED, VERSION_CHANGED, FENCED = 1, 0, -1


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
    async def _swap(self, old: RechargeRecord, new: RechargeRecord, owner: str | None = None) -> int:
        """Replace `old` by `new` if the stored version is still `old.version` and, with `owner`,
        the record's lease is live and held by `owner` (checked in the same atomic step).
        SWAPPED, VERSION_CHANGED, or FENCED (the lease is not `owner`'s: nothing written)."""

    async def transition(self, record_id: str, expected: RechargeState | Iterable[RechargeState],
                         new: RechargeState, note: str = "", *, by: str = "", now: float | None = None,
                         lease: RechargeLease | None = None, **fields: Any) -> RechargeRecord:
        """Compare-and-set the state: from one of `expected` to `new`, appending a timestamped
        history entry (and setting `fields`). Raises StateConflict on another current state.
        With `lease`: written only while that lease is live and ours, else LeaseLost (a fenced
        write: a worker whose lease ran out mid-call cannot overwrite the new owner's work)."""
        return await self._write(record_id, _states(expected), RechargeState(new), note, by, now, fields, lease)

    async def update(self, record_id: str, expected: RechargeState | Iterable[RechargeState], *,
                     now: float | None = None, lease: RechargeLease | None = None, **fields: Any) -> RechargeRecord:
        """Set fields while the record stays in one of `expected` (no history entry); `lease`
        fences the write as in transition()."""
        return await self._write(record_id, _states(expected), None, "", "", now, fields, lease)

    async def _write(self, record_id: str, expected: frozenset[RechargeState], new: RechargeState | None,
                     note: str, by: str, now: float | None, fields: dict[str, Any],
                     lease: RechargeLease | None = None) -> RechargeRecord:
        if lease is not None and lease.record_id != record_id:
            raise ValueError(f"lease for {lease.record_id} used to write {record_id}")
        owner = lease.owner if lease is not None else None
        for _ in range(20):
            current = await self.get(record_id)
            if current is None or current.state not in expected:
                raise StateConflict(record_id, expected, current.state if current else None)
            at = time.time() if now is None else now
            changed = _changed(current, at, new, note, by, fields)
            outcome = await self._swap(current, changed, owner)
            if outcome == FENCED:
                raise LeaseLost(record_id, "write refused: the lease is no longer ours")
            if outcome == SWAPPED:
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
                    now: float | None = None) -> list[RechargeLease]:
        """Take up to `limit` due records, each under a lease of `lease` seconds."""

    @abstractmethod
    async def renew(self, lease: RechargeLease, seconds: float) -> RechargeLease | None:
        """Extend a lease we still hold; None when it expired and may be someone else's."""

    @abstractmethod
    async def release(self, lease: RechargeLease, due_at: float | None) -> bool:
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


