"""The message log in process memory (dev, tests, a single process without Redis)."""
from __future__ import annotations

import time

from .messages import (
    MESSAGE_TTL, MessageLog, MessageRecord, MessageStatus, decode_message, encode_message, is_pending,
)


class MemoryMessageLog(MessageLog):
    """In-process log for `alap dev` and tests (one process only)."""

    name = "memory"

    def __init__(self, ttl: int = MESSAGE_TTL) -> None:
        super().__init__(ttl)
        self.records: dict[str, tuple[bytes, float]] = {}  # id -> (record json, expires at)
        self.index: dict[tuple[str, str], tuple[str, float]] = {}
        self.pending_sets: dict[str, dict[str, float]] = {}
        self.parked: dict[str, float] = {}

    async def save(self, record: MessageRecord) -> None:
        expires = time.time() + self._record_ttl(record)
        self.records[record.id] = (encode_message(record), expires)
        if record.route:
            for pid in record.provider_ids():
                self.index[(record.route, pid)] = (record.id, expires)
            waiting = self.pending_sets.setdefault(record.route, {})
            if is_pending(record):
                waiting.setdefault(record.id, record.sent_at or record.updated_at)
            else:
                waiting.pop(record.id, None)
        if record.status is MessageStatus.PARKED and record.not_before is not None:
            self.parked[record.id] = record.not_before
        else:
            self.parked.pop(record.id, None)

    async def get(self, message_id: str) -> MessageRecord | None:
        item = self.records.get(message_id)
        if item is None:
            return None
        if item[1] < time.time():
            del self.records[message_id]
            return None
        return decode_message(item[0])

    async def _lookup(self, provider: str, provider_message_id: str) -> str | None:
        item = self.index.get((provider, provider_message_id))
        if item is None or item[1] < time.time():
            return None
        return item[0]

    async def pending(self, provider: str, limit: int = 100) -> list[MessageRecord]:
        waiting = self.pending_sets.get(provider, {})
        out = []
        for our_id, _ in sorted(waiting.items(), key=lambda kv: kv[1]):
            record = await self.get(our_id)
            if record is None or not is_pending(record):
                waiting.pop(our_id, None)
                continue
            out.append(record)
            if len(out) >= limit:
                break
        return out

    async def checked(self, provider: str, message_id: str, at: float) -> None:
        waiting = self.pending_sets.get(provider, {})
        if message_id in waiting:
            waiting[message_id] = at

    async def take_due(self, now: float, limit: int = 100, *, lease: float = 300.0) -> list[MessageRecord]:
        due = sorted((score, our_id) for our_id, score in self.parked.items() if score <= now)[:limit]
        out = []
        for _, our_id in due:
            record = await self.get(our_id)
            if record is None:
                self.parked.pop(our_id, None)
                continue
            self.parked[our_id] = now + lease
            out.append(record)
        return out

    async def unpark(self, message_id: str) -> None:
        self.parked.pop(message_id, None)

    async def parked_count(self) -> int:
        return len(self.parked)

    async def close(self) -> None:
        return None
