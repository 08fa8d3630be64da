"""The outbound message log: every SMS Alap sent (or holds back), its provider ids and status.

One record per message, keyed by our own id; an index from (provider, provider message id) to
it so a delivery report (BDApps `/bdapps/sms/report`, DiniSoft `getstatus`) finds it; two
queues:

- parked: messages waiting for a not-before time (BDApps E1319, the per-day limit, or every
  route temporarily down). `take_due()` hands due ones out under a lease, so two processes
  flushing at once never send one message twice and a crash mid-flush only delays it;
- pending: per provider, accepted messages whose final state is not known yet (for polling
  providers that send no reports, i.e. DiniSoft), least recently checked first.

Records are short-lived (`ttl`, 7 days by default, refreshed on every write); a parked record
lives at least `ttl` past its not-before time. The text of a message is kept only while it is
parked (it is needed to send it later) and dropped once it has been handed to a provider.

Status words from BDApps (DELIVERED, EXPIRED, DELETED, UNDELIVERABLE, ACCEPTED, UNKNOWN,
REJECTED) and SMPP (DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD) normalise
to one `MessageStatus`. A final state is never replaced by a non-final one (reports may arrive
out of order).
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from enum import Enum
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from .redis_keyspace import RedisKeyspace

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .base import Store

log = structlog.get_logger("alap.messages")

MESSAGE_TTL = 7 * 86400  # seconds a message record (and its provider-id index) is kept


class MessageStatus(str, Enum):
    # Delivery states (BDApps' enum; SMPP spellings normalise to these).
    ACCEPTED = "ACCEPTED"  # a provider took it; no final report yet
    DELIVERED = "DELIVERED"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    UNDELIVERABLE = "UNDELIVERABLE"
    UNKNOWN = "UNKNOWN"  # also ours: a send timed out and the message may or may not have gone
    REJECTED = "REJECTED"
    # Ours.
    PARKED = "PARKED"  # waiting for its not-before time (per-day limit, every route down)
    FAILED = "FAILED"  # no route accepted it and retrying cannot help
    OPTED_OUT = "OPTED_OUT"  # not sent: the subscriber opted out (never stored, only returned)


FINAL_STATUSES = frozenset({
    MessageStatus.DELIVERED, MessageStatus.EXPIRED, MessageStatus.DELETED, MessageStatus.UNDELIVERABLE,
    MessageStatus.REJECTED, MessageStatus.FAILED, MessageStatus.OPTED_OUT,
})

_STATUS_WORDS: dict[str, MessageStatus] = {
    # BDApps -> application
    "DELIVERED": MessageStatus.DELIVERED, "EXPIRED": MessageStatus.EXPIRED, "DELETED": MessageStatus.DELETED,
    "UNDELIVERABLE": MessageStatus.UNDELIVERABLE, "ACCEPTED": MessageStatus.ACCEPTED,
    "UNKNOWN": MessageStatus.UNKNOWN, "REJECTED": MessageStatus.REJECTED,
    # SMPP gateway spellings
    "DELIVRD": MessageStatus.DELIVERED, "UNDELIV": MessageStatus.UNDELIVERABLE,
    "ACCEPTD": MessageStatus.ACCEPTED, "REJECTD": MessageStatus.REJECTED, "ENROUTE": MessageStatus.ACCEPTED,
    # SMS gateways (AamarSMS /smsstatus, DiniSoft getstatus)
    "PENDING": MessageStatus.ACCEPTED, "SENT": MessageStatus.ACCEPTED, "FAILED": MessageStatus.UNDELIVERABLE,
}


def normalize_status(text: str) -> MessageStatus | None:
    """One enum for every spelling ("DELIVRD", " delivered ", "UNDELIV"...); None if unknown."""
    return _STATUS_WORDS.get("".join(str(text).split()).upper())


class MessageRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    to: str  # the address as the caller gave it (masked BDApps ids included)
    kind: str  # reply | notice | otp | receipt
    status: MessageStatus
    created_at: float
    updated_at: float
    route: str | None = None  # provider that accepted it (or was last tried)
    message_ids: tuple[str, ...] = ()  # provider message ids
    request_id: str | None = None  # BDApps requestId (delivery reports carry it)
    parts: int = 0
    provider_status: str | None = None  # the provider's own last word ("DELIVRD", "E1319"...)
    code: str | None = None  # last failure code
    detail: str | None = None
    text: str | None = None  # only while PARKED
    not_before: float | None = None  # only while PARKED
    reply_to_request: bool = False
    attempts: int = 0  # send attempts over the message's life (parks included)
    sent_at: float | None = None
    final_at: float | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def provider_ids(self) -> tuple[str, ...]:
        ids = list(self.message_ids)
        if self.request_id and self.request_id not in ids:
            ids.append(self.request_id)
        return tuple(ids)


_encode = msgspec.json.encode
_decoder = msgspec.json.Decoder(MessageRecord)


def _decode(data: bytes | None) -> MessageRecord | None:
    if not data:
        return None
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _pending(record: MessageRecord) -> bool:
    return record.status is MessageStatus.ACCEPTED and bool(record.route) and bool(record.message_ids)


class MessageLog(ABC):
    """Message records, their provider-id index, the parked queue and the pending sets."""

    name = "abstract"

    def __init__(self, ttl: int = MESSAGE_TTL) -> None:
        self.ttl = ttl

    # -- records ---------------------------------------------------------------------------
    @abstractmethod
    async def save(self, record: MessageRecord) -> None:
        """Insert or replace a record; index its provider ids; keep the pending set in step."""

    @abstractmethod
    async def get(self, message_id: str) -> MessageRecord | None:
        """A record by our own id."""

    @abstractmethod
    async def _lookup(self, provider: str, provider_message_id: str) -> str | None:
        """Our id for a provider's message id (or BDApps requestId)."""

    async def find(self, provider: str, provider_message_id: str) -> MessageRecord | None:
        our_id = await self._lookup(provider, provider_message_id.strip())
        return await self.get(our_id) if our_id else None

    async def update_status(self, provider: str, provider_message_id: str, status_text: str, *,
                            at: float | None = None) -> bool:
        """Apply a delivery report. False when the id is unknown (the caller acks and logs it).

        The status is normalised (DELIVERED / DELIVRD ...); an unrecognised word is stored
        verbatim as `provider_status` with status UNKNOWN. A final state is kept when a
        non-final one arrives later.
        """
        record = await self.find(provider, provider_message_id)
        if record is None:
            return False
        status = normalize_status(status_text)
        if status is None:
            log.warning("sms_status_unrecognised", provider=provider, provider_message_id=provider_message_id,
                        status=str(status_text)[:40])
            status = MessageStatus.UNKNOWN
        now = at if at is not None else time.time()
        if record.final and status not in FINAL_STATUSES:
            log.info("sms_status_stale", id=record.id, kept=record.status.value, got=status.value)
            return True
        record.status = status
        record.provider_status = str(status_text).strip()[:40]
        record.updated_at = now
        if status in FINAL_STATUSES:
            record.final_at = now
        await self.save(record)
        return True

    # -- pending (for polling) --------------------------------------------------------------
    @abstractmethod
    async def pending(self, provider: str, limit: int = 100) -> list[MessageRecord]:
        """Accepted messages of `provider` with no final state, least recently checked first."""

    @abstractmethod
    async def checked(self, provider: str, message_id: str, at: float) -> None:
        """Move a still-pending message to the back of the polling order."""

    # -- parked queue -----------------------------------------------------------------------
    # save() keeps the queue in step with the record: a PARKED record is queued at its
    # not-before time, any other status takes it out (in the same round trip).
    async def park(self, record: MessageRecord, not_before: float, *, now: float | None = None) -> None:
        """Hold a message until `not_before` (wall-clock seconds). The record keeps its text."""
        record.status = MessageStatus.PARKED
        record.not_before = not_before
        record.updated_at = now if now is not None else time.time()
        await self.save(record)

    @abstractmethod
    async def take_due(self, now: float, limit: int = 100, *, lease: float = 300.0) -> list[MessageRecord]:
        """Parked messages whose time has come, each leased for `lease` seconds: a second
        caller does not get them until then. Call `unpark()` once handled, or `park()` again."""

    @abstractmethod
    async def unpark(self, message_id: str) -> None: ...

    @abstractmethod
    async def parked_count(self) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    def _record_ttl(self, record: MessageRecord) -> int:
        ttl = self.ttl
        if record.status is MessageStatus.PARKED and record.not_before:
            ttl = max(ttl, int(record.not_before - time.time()) + self.ttl)
        return max(ttl, 1)


# --- memory ---------------------------------------------------------------------------------

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
        self.records[record.id] = (_encode(record), expires)
        if record.route:
            for pid in record.provider_ids():
                self.index[(record.route, pid)] = (record.id, expires)
            waiting = self.pending_sets.setdefault(record.route, {})
            if _pending(record):
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
        return _decode(item[0])

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
            if record is None or not _pending(record):
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


# --- redis ----------------------------------------------------------------------------------

# Lease due members of the parked queue in one step: no two callers get the same message.
_TAKE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
"""


class RedisMessageLog(RedisKeyspace, MessageLog):
    """Redis log on an existing redis.asyncio client, under `prefix`.

    Keys: `{prefix}m:<id>` record (JSON, expires), `{prefix}mi:<provider>:<provider id>` index
    (expires with the record), `{prefix}mq` parked queue (sorted set, score = not-before),
    `{prefix}mp:<provider>` pending set (sorted set, score = last checked). The sorted sets do
    not expire; members whose record has gone are dropped when met.
    """

    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "alap:", *, ttl: int = MESSAGE_TTL) -> None:
        RedisKeyspace.__init__(self, client, prefix)
        MessageLog.__init__(self, ttl)
        self._take_due_script = client.register_script(_TAKE_DUE)

    def _key(self, our_id: str) -> str:
        return self.key("m", our_id)

    def _index_key(self, provider: str, provider_message_id: str) -> str:
        return self.key("mi", provider, provider_message_id)

    def _pending_key(self, provider: str) -> str:
        return self.key("mp", provider)

    @property
    def _parked_key(self) -> str:
        return self.key("mq")

    async def save(self, record: MessageRecord) -> None:
        ttl = self._record_ttl(record)
        async with self._guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(self._key(record.id), _encode(record), ex=ttl)
                if record.route:
                    for pid in record.provider_ids():
                        pipe.set(self._index_key(record.route, pid), record.id, ex=ttl)
                    if _pending(record):
                        pipe.zadd(self._pending_key(record.route),
                                  {record.id: record.sent_at or record.updated_at}, nx=True)
                    else:
                        pipe.zrem(self._pending_key(record.route), record.id)
                if record.status is MessageStatus.PARKED and record.not_before is not None:
                    pipe.zadd(self._parked_key, {record.id: record.not_before})
                else:
                    pipe.zrem(self._parked_key, record.id)
                await pipe.execute()

    async def get(self, message_id: str) -> MessageRecord | None:
        async with self._guard():
            return _decode(await self.redis.get(self._key(message_id)))

    async def _lookup(self, provider: str, provider_message_id: str) -> str | None:
        async with self._guard():
            value = await self.redis.get(self._index_key(provider, provider_message_id))
        return value.decode() if isinstance(value, bytes) else value

    async def _records(self, ids: list[Any]) -> list[tuple[str, MessageRecord | None]]:
        names = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
        if not names:
            return []
        async with self._guard():
            keys = [self._key(n) for n in names]
            # Records live in different cluster slots: a cluster client splits the read per node.
            mget = getattr(self.redis, "mget_nonatomic", None) or self.redis.mget
            values = await mget(keys)
        return [(n, _decode(v)) for n, v in zip(names, values)]

    async def pending(self, provider: str, limit: int = 100) -> list[MessageRecord]:
        key = self._pending_key(provider)
        async with self._guard():
            ids = await self.redis.zrange(key, 0, max(limit, 1) * 2 - 1)
        out, gone = [], []
        for our_id, record in await self._records(ids):
            if record is None or not _pending(record):
                gone.append(our_id)
            elif len(out) < limit:
                out.append(record)
        if gone:
            async with self._guard():
                await self.redis.zrem(key, *gone)
        return out

    async def checked(self, provider: str, message_id: str, at: float) -> None:
        async with self._guard():
            await self.redis.zadd(self._pending_key(provider), {message_id: at}, xx=True)

    async def take_due(self, now: float, limit: int = 100, *, lease: float = 300.0) -> list[MessageRecord]:
        async with self._guard():
            ids = await self._take_due_script(keys=[self._parked_key], args=[now, limit, now + lease])
        out: list[MessageRecord] = []
        gone: list[str] = []
        for our_id, record in await self._records(ids):
            if record is None:
                gone.append(our_id)
            else:
                out.append(record)
        if gone:
            async with self._guard():
                await self.redis.zrem(self._parked_key, *gone)
        return out

    async def unpark(self, message_id: str) -> None:
        async with self._guard():
            await self.redis.zrem(self._parked_key, message_id)

    async def parked_count(self) -> int:
        async with self._guard():
            return int(await self.redis.zcard(self._parked_key))

    async def close(self) -> None:
        return None  # the client belongs to whoever made it (usually the RedisStore)


def open_message_log(store: Store | None = None, *, ttl: int = MESSAGE_TTL) -> MessageLog:
    """The log next to a store: Redis (same client, same prefix) for a RedisStore, else memory."""
    client = getattr(store, "redis", None)
    if client is not None:
        return RedisMessageLog(client, getattr(store, "prefix", "alap:"), ttl=ttl)
    return MemoryMessageLog(ttl)


__all__ = [
    "FINAL_STATUSES", "MESSAGE_TTL", "MemoryMessageLog", "MessageLog", "MessageRecord", "MessageStatus",
    "RedisMessageLog", "normalize_status", "open_message_log",
]
