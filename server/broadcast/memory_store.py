"""The in-process broadcast store (tests, `alap dev`): the same behaviour as the Redis one,
lost when the process ends."""
from __future__ import annotations

import copy
from typing import Iterable

from .store import (
    ACTIVE_STATES, CANCELLED, DONE, LEASE_SECONDS, LOADING, PARKED, RUNNING, SCHEDULED, Broadcast,
    BroadcastExists, BroadcastStore, LeaseLost, Spec, Status,
)


class MemoryBroadcastStore(BroadcastStore):
    name = "memory"

    def __init__(self) -> None:
        self.broadcasts: dict[str, Broadcast] = {}
        self.recipients: dict[str, list[str]] = {}
        self.bad: dict[str, list[str]] = {}
        self.status: dict[str, bytearray] = {}
        self.index: dict[tuple[str, str], tuple[str, int]] = {}

    async def create(self, spec: Spec) -> Broadcast:
        found = self.broadcasts.get(spec.name)
        if found is not None:
            if found.spec.fingerprint != spec.fingerprint:
                raise BroadcastExists(spec.name)
            return copy.deepcopy(found)
        b = Broadcast(spec=spec, state=LOADING, updated_at=spec.created_at)
        self.broadcasts[spec.name] = b
        self.recipients[spec.name], self.bad[spec.name], self.status[spec.name] = [], [], bytearray()
        return copy.deepcopy(b)

    async def append(self, name: str, entries: list[str], bad: list[str]) -> None:
        self.recipients[name].extend(entries)
        self.bad[name].extend(bad)

    async def loaded(self, name: str, total: int, invalid: int, state: str, not_before: float | None) -> None:
        b = self.broadcasts[name]
        b.total, b.invalid, b.state, b.not_before = total, invalid, state, not_before

    async def restart_loading(self, name: str) -> None:
        self.recipients[name], self.bad[name] = [], []

    async def get(self, name: str) -> Broadcast | None:
        b = self.broadcasts.get(name)
        return copy.deepcopy(b) if b is not None else None

    async def names(self) -> list[str]:
        return sorted(self.broadcasts, key=lambda n: self.broadcasts[n].spec.created_at)

    async def bad_lines(self, name: str, limit: int = 100) -> list[str]:
        return list(self.bad.get(name, [])[:limit])

    async def entries(self, name: str, start: int, count: int) -> list[str]:
        return self.recipients[name][start:start + count]

    async def statuses(self, name: str, start: int, count: int) -> str:
        data = self.status[name][start:start + count]
        return data.decode() + "\0" * (count - len(data))

    async def acquire(self, name: str, owner: str, now: float, lease: float = LEASE_SECONDS,
                      *, steal_from: str | None = None, reopen: bool = False) -> Broadcast | None:
        b = self.broadcasts.get(name)
        if b is None or (b.state not in ACTIVE_STATES and not (reopen and b.state == DONE)):
            return None
        if b.owner and b.owner not in (owner, steal_from) and b.lease_until > now:
            return None
        b.owner, b.lease_until, b.state, b.updated_at = owner, now + lease, RUNNING, now
        return copy.deepcopy(b)

    def _held(self, name: str, owner: str, now: float) -> Broadcast:
        b = self.broadcasts[name]
        if b.owner != owner:  # an expired lease nobody took is still ours
            raise LeaseLost(name)
        return b

    async def begin(self, name: str, owner: str, seqs: list[int], now: float, lease: float = LEASE_SECONDS) -> str:
        b = self._held(name, owner, now)
        if b.state == CANCELLED:
            return b.state
        b.inflight, b.lease_until, b.updated_at = list(seqs), now + lease, now
        return b.state

    async def finish(self, name: str, owner: str, outcomes: Iterable[tuple[int, str]], advance_to: int | None,
                     now: float, *, slowed: int = 0) -> None:
        b = self._held(name, owner, now)
        status = self.status[name]
        for seq, code in outcomes:
            if len(status) <= seq:
                status.extend(b"\0" * (seq + 1 - len(status)))
            old = chr(status[seq])
            if old != "\0":
                b.counts[old] = b.counts.get(old, 0) - 1
            status[seq] = ord(code)
            b.counts[code] = b.counts.get(code, 0) + 1
        if advance_to is not None:
            b.cursor = max(b.cursor, advance_to)
        b.inflight, b.slowed, b.updated_at = [], b.slowed + slowed, now

    async def release(self, name: str, owner: str, state: str, now: float, *,
                      not_before: float | None = None, detail: str = "") -> None:
        b = self.broadcasts[name]
        if b.owner != owner:
            return
        if b.state != CANCELLED:
            b.state = state
        b.owner, b.lease_until, b.not_before, b.detail, b.updated_at = "", 0.0, not_before, detail, now

    async def cancel(self, name: str, now: float) -> bool:
        b = self.broadcasts.get(name)
        if b is None or b.state in (DONE, CANCELLED):
            return False
        b.state, b.updated_at = CANCELLED, now
        return True

    async def due(self, now: float, limit: int = 10) -> list[str]:
        out = []
        for name, b in self.broadcasts.items():
            if b.state in (SCHEDULED, PARKED) and (b.not_before or 0) <= now:
                out.append(name)
            elif b.state == RUNNING and b.lease_until <= now:
                out.append(name)
        return out[:limit]

    async def index_messages(self, name: str, items: list[tuple[str, str, int]]) -> None:
        for provider, message_id, seq in items:
            self.index[(provider, message_id)] = (name, seq)

    async def report(self, provider: str, message_id: str, status: Status | None) -> bool:
        found = self.index.get((provider, message_id.strip()))
        if found is None or status is None:
            return found is not None
        name, seq = found
        current = self.status[name][seq:seq + 1].decode()
        if current in (Status.SENT.value, Status.DEFERRED.value):
            b = self.broadcasts[name]
            b.counts[current] -= 1
            b.counts[status.value] = b.counts.get(status.value, 0) + 1
            self.status[name][seq] = ord(status.value)
        return True

    async def close(self) -> None:
        return None
