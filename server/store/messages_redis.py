"""The message log in Redis, next to the sessions (same client, same prefix)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .messages import (
    MESSAGE_TTL, MessageLog, MessageRecord, MessageStatus, decode_message, encode_message, is_pending,
)
from .redis_keyspace import RedisKeyspace

if TYPE_CHECKING:
    import redis.asyncio as aioredis


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
                pipe.set(self._key(record.id), encode_message(record), ex=ttl)
                if record.route:
                    for pid in record.provider_ids():
                        pipe.set(self._index_key(record.route, pid), record.id, ex=ttl)
                    if is_pending(record):
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
            return decode_message(await self.redis.get(self._key(message_id)))

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
        return [(n, decode_message(v)) for n, v in zip(names, values)]

    async def pending(self, provider: str, limit: int = 100) -> list[MessageRecord]:
        key = self._pending_key(provider)
        async with self._guard():
            ids = await self.redis.zrange(key, 0, max(limit, 1) * 2 - 1)
        out, gone = [], []
        for our_id, record in await self._records(ids):
            if record is None or not is_pending(record):
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
