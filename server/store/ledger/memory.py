"""The in-process ledger (one process: `alap dev` without Redis, tests)."""
from __future__ import annotations

import time

from .base import FENCED, SWAPPED, VERSION_CHANGED, Ledger
from .records import (RechargeLease, RechargeRecord, RechargeState, decode_record_or_none, encode_record,
                      new_lease_owner)


class MemoryLedger(Ledger):
    """In-process ledger (one process only: `alap dev` without Redis, tests)."""

    name = "memory"

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.keys: dict[str, str] = {}
        self.money_keys: set[str] = set()
        self.queue: dict[str, float] = {}
        self.leases: dict[str, tuple[str, float]] = {}  # id -> (owner, expires at)

    async def _insert(self, record: RechargeRecord, enqueue: bool) -> tuple[str, str | None]:
        existing = self.keys.get(record.idempotency_key)
        if existing is not None:
            return "exists", existing
        money = {"x:" + record.external_trx_id, "f:" + record.refid}
        if money & self.money_keys or record.id in self.records:
            return "collision", None
        self.keys[record.idempotency_key] = record.id
        self.money_keys |= money
        self.records[record.id] = encode_record(record)
        if enqueue:
            self.queue[record.id] = time.time()
        return "created", None

    async def get(self, record_id: str) -> RechargeRecord | None:
        return decode_record_or_none(self.records.get(record_id))

    async def find(self, idempotency_key: str) -> RechargeRecord | None:
        record_id = self.keys.get(idempotency_key)
        return await self.get(record_id) if record_id else None

    async def _swap(self, old: RechargeRecord, new: RechargeRecord, owner: str | None = None) -> int:
        if owner is not None:
            held = self._lease_live(old.id, time.time())
            if held is None or held[0] != owner:
                return FENCED
        current = decode_record_or_none(self.records.get(old.id))
        if current is None or current.version != old.version:
            return VERSION_CHANGED
        self.records[old.id] = encode_record(new)
        return SWAPPED

    def _all(self) -> list[RechargeRecord]:
        return [r for r in (decode_record_or_none(v) for v in self.records.values()) if r is not None]

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
                    now: float | None = None) -> list[RechargeLease]:
        at = time.time() if now is None else now
        owner = new_lease_owner(worker_id)
        out: list[RechargeLease] = []
        for record_id, due in sorted(self.queue.items(), key=lambda kv: kv[1]):
            if due > at or len(out) >= limit:
                break
            if self._lease_live(record_id, at) is not None:
                continue
            self.leases[record_id] = (owner, at + lease)
            self.queue[record_id] = at + lease
            out.append(RechargeLease(record_id, owner, at + lease))
        return out

    async def renew(self, lease: RechargeLease, seconds: float) -> RechargeLease | None:
        at = time.time()
        held = self._lease_live(lease.record_id, at)
        if held is None or held[0] != lease.owner:
            return None
        self.leases[lease.record_id] = (lease.owner, at + seconds)
        if lease.record_id in self.queue:
            self.queue[lease.record_id] = max(self.queue[lease.record_id], at + seconds)
        return RechargeLease(lease.record_id, lease.owner, at + seconds)

    async def release(self, lease: RechargeLease, due_at: float | None) -> bool:
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


