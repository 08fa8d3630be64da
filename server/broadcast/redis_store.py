"""The Redis broadcast store, next to the sessions (same client, same key prefix).

Keys (one hash tag per broadcast, so its scripts run on one Redis Cluster slot):

    {prefix}bc:{NAME}:h   hash: spec (JSON), state, counts (c:S, c:D...), cursor, in-flight
                          marker, lease owner and expiry, not-before, detail
    {prefix}bc:{NAME}:r   list: the recipients, in FILE order
    {prefix}bc:{NAME}:b   list: bad lines ("line 12: ...")
    {prefix}bc:{NAME}:s   string: one status byte per recipient (100,000 recipients: 100 kB)
    {prefix}bc:names      sorted set: every broadcast by creation time
    {prefix}bc:due        sorted set: when a worker should look at a broadcast (a hint: the
                          hash's lease and state decide)
    {prefix}bcm:PROVIDER:MESSAGE_ID   "SEQ NAME": a delivery report's recipient (expires in 7 days)

Every step that the "never twice" guarantee rests on (begin, finish, acquire, release) is one
Lua script on the broadcast's hash, checking the lease owner.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from server.store.redis_errors import redis_guard
from server.store.redis_keyspace import RedisKeyspace, hash_tag

from .store import (
    ACTIVE_STATES, CANCELLED, LEASE_SECONDS, LOADING, PARKED, REPORT_INDEX_TTL, RUNNING, SCHEDULED,
    STATUS_CODES, Broadcast, BroadcastExists, BroadcastStore, LeaseLost, Spec, Status, decode_spec, encode_spec,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

_ACTIVE = "{" + ",".join(f"['{s}']=1" for s in ACTIVE_STATES) + "}"

_ACQUIRE = f"""
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not (({_ACTIVE})[state] or (ARGV[5] == '1' and state == 'done')) then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
local till = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
if owner ~= '' and owner ~= ARGV[1] and owner ~= ARGV[4] and till > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'lease_until', tonumber(ARGV[2]) + tonumber(ARGV[3]),
           'state', '{RUNNING}', 'updated_at', ARGV[2])
return 1
"""

_BEGIN = f"""
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 'LOST' end
local state = redis.call('HGET', KEYS[1], 'state')
if state == '{CANCELLED}' then return state end
redis.call('HSET', KEYS[1], 'inflight', ARGV[4], 'lease_until', tonumber(ARGV[2]) + tonumber(ARGV[3]),
           'updated_at', ARGV[2])
return state
"""

_FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 'LOST' end
for i = 5, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  local code = ARGV[i + 1]
  local old = redis.call('GETRANGE', KEYS[2], seq, seq)
  if old ~= '' and old ~= '\\0' then redis.call('HINCRBY', KEYS[1], 'c:' .. old, -1) end
  redis.call('SETRANGE', KEYS[2], seq, code)
  redis.call('HINCRBY', KEYS[1], 'c:' .. code, 1)
end
if ARGV[3] ~= '' then
  local cursor = tonumber(redis.call('HGET', KEYS[1], 'cursor') or '0')
  if tonumber(ARGV[3]) > cursor then redis.call('HSET', KEYS[1], 'cursor', ARGV[3]) end
end
if ARGV[4] ~= '0' then redis.call('HINCRBY', KEYS[1], 'slowed', ARGV[4]) end
redis.call('HSET', KEYS[1], 'inflight', '[]', 'updated_at', ARGV[2])
return 'OK'
"""

_RELEASE = f"""
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= '{CANCELLED}' then redis.call('HSET', KEYS[1], 'state', ARGV[2]) end
redis.call('HSET', KEYS[1], 'owner', '', 'lease_until', '0', 'not_before', ARGV[4], 'detail', ARGV[5],
           'updated_at', ARGV[3])
return 1
"""

_CANCEL = f"""
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' or state == '{CANCELLED}' then return 0 end
redis.call('HSET', KEYS[1], 'state', '{CANCELLED}', 'updated_at', ARGV[1])
return 1
"""

_REPORT = """
local seq = tonumber(ARGV[1])
local old = redis.call('GETRANGE', KEYS[2], seq, seq)
if old == 'S' or old == 'P' then
  redis.call('SETRANGE', KEYS[2], seq, ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'c:' .. old, -1)
  redis.call('HINCRBY', KEYS[1], 'c:' .. ARGV[2], 1)
end
return 1
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBroadcastStore(RedisKeyspace, BroadcastStore):
    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "alap:") -> None:
        RedisKeyspace.__init__(self, client, prefix)
        self._acquire = client.register_script(_ACQUIRE)
        self._begin = client.register_script(_BEGIN)
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)
        self._cancel = client.register_script(_CANCEL)
        self._report = client.register_script(_REPORT)

    def _k(self, name: str, part: str) -> str:
        return self.key("bc", hash_tag(name), part)

    @property
    def _names(self) -> str:
        return self.key("bc", "names")

    @property
    def _due(self) -> str:
        return self.key("bc", "due")

    def _index(self, provider: str, message_id: str) -> str:
        return self.key("bcm", provider, message_id)

    async def create(self, spec: Spec) -> Broadcast:
        h = self._k(spec.name, "h")
        async with redis_guard():
            created = await self.redis.hsetnx(h, "spec", encode_spec(spec))
            if created:
                await self.redis.hset(h, mapping={"state": LOADING, "cursor": 0, "total": 0, "invalid": 0,
                                                  "updated_at": spec.created_at})
                await self.redis.zadd(self._names, {spec.name: spec.created_at})
        b = await self.get(spec.name)
        assert b is not None
        if b.spec.fingerprint != spec.fingerprint:
            raise BroadcastExists(spec.name)
        return b

    async def append(self, name: str, entries: list[str], bad: list[str]) -> None:
        async with redis_guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                if entries:
                    pipe.rpush(self._k(name, "r"), *entries)
                if bad:
                    pipe.rpush(self._k(name, "b"), *bad)
                await pipe.execute()

    async def loaded(self, name: str, total: int, invalid: int, state: str, not_before: float | None) -> None:
        async with redis_guard():
            await self.redis.hset(self._k(name, "h"), mapping={"total": total, "invalid": invalid, "state": state,
                                                               "not_before": "" if not_before is None else not_before})
            if state == SCHEDULED and not_before is not None:
                await self.redis.zadd(self._due, {name: not_before})

    async def restart_loading(self, name: str) -> None:
        async with redis_guard():
            await self.redis.delete(self._k(name, "r"), self._k(name, "b"))

    async def get(self, name: str) -> Broadcast | None:
        async with redis_guard():
            raw = await self.redis.hgetall(self._k(name, "h"))
        if not raw or b"spec" not in raw:
            return None
        f = {_s(k): _s(v) for k, v in raw.items()}

        def num(key: str, kind: type = int) -> Any:
            value = f.get(key, "")
            return kind(float(value)) if value not in ("", None) else kind(0)

        return Broadcast(
            spec=decode_spec(raw[b"spec"]), state=f.get("state", LOADING), total=num("total"),
            invalid=num("invalid"), cursor=num("cursor"),
            counts={c: num("c:" + c) for c in STATUS_CODES if f.get("c:" + c)},
            not_before=float(f["not_before"]) if f.get("not_before") else None, detail=f.get("detail", ""),
            slowed=num("slowed"), inflight=json.loads(f.get("inflight") or "[]"), owner=f.get("owner", ""),
            lease_until=num("lease_until", float), updated_at=num("updated_at", float))

    async def names(self) -> list[str]:
        async with redis_guard():
            return [_s(n) for n in await self.redis.zrange(self._names, 0, -1)]

    async def bad_lines(self, name: str, limit: int = 100) -> list[str]:
        async with redis_guard():
            return [_s(x) for x in await self.redis.lrange(self._k(name, "b"), 0, limit - 1)]

    async def entries(self, name: str, start: int, count: int) -> list[str]:
        async with redis_guard():
            return [_s(x) for x in await self.redis.lrange(self._k(name, "r"), start, start + count - 1)]

    async def statuses(self, name: str, start: int, count: int) -> str:
        async with redis_guard():
            data = _s(await self.redis.getrange(self._k(name, "s"), start, start + count - 1))
        return data + "\0" * (count - len(data))

    async def acquire(self, name: str, owner: str, now: float, lease: float = LEASE_SECONDS,
                      *, steal_from: str | None = None, reopen: bool = False) -> Broadcast | None:
        async with redis_guard():
            ok = await self._acquire(keys=[self._k(name, "h")],
                                     args=[owner, now, lease, steal_from or "", "1" if reopen else "0"])
            if not ok:
                return None
            await self.redis.zadd(self._due, {name: now + lease})
        return await self.get(name)

    async def begin(self, name: str, owner: str, seqs: list[int], now: float, lease: float = LEASE_SECONDS) -> str:
        async with redis_guard():
            state = _s(await self._begin(keys=[self._k(name, "h")], args=[owner, now, lease, json.dumps(seqs)]))
            if state == "LOST":
                raise LeaseLost(name)
            await self.redis.zadd(self._due, {name: now + lease})
        return state

    async def finish(self, name: str, owner: str, outcomes: Iterable[tuple[int, str]], advance_to: int | None,
                     now: float, *, slowed: int = 0) -> None:
        args: list[Any] = [owner, now, "" if advance_to is None else advance_to, slowed]
        for seq, code in outcomes:
            args += [seq, code]
        async with redis_guard():
            result = _s(await self._finish(keys=[self._k(name, "h"), self._k(name, "s")], args=args))
        if result == "LOST":
            raise LeaseLost(name)

    async def release(self, name: str, owner: str, state: str, now: float, *,
                      not_before: float | None = None, detail: str = "") -> None:
        async with redis_guard():
            await self._release(keys=[self._k(name, "h")],
                                args=[owner, state, now, "" if not_before is None else not_before, detail])
            if state == PARKED and not_before is not None:
                await self.redis.zadd(self._due, {name: not_before})
            else:
                await self.redis.zrem(self._due, name)

    async def cancel(self, name: str, now: float) -> bool:
        async with redis_guard():
            done = bool(await self._cancel(keys=[self._k(name, "h")], args=[now]))
            await self.redis.zrem(self._due, name)
        return done

    async def due(self, now: float, limit: int = 10) -> list[str]:
        async with redis_guard():
            names = [_s(n) for n in await self.redis.zrangebyscore(self._due, "-inf", now, start=0, num=limit)]
        out = []
        for name in names:
            b = await self.get(name)
            if b is None or b.state not in (SCHEDULED, PARKED, RUNNING):
                async with redis_guard():
                    await self.redis.zrem(self._due, name)
            elif b.state != RUNNING or b.lease_until <= now:
                out.append(name)
        return out

    async def index_messages(self, name: str, items: list[tuple[str, str, int]]) -> None:
        if not items:
            return
        async with redis_guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                for provider, message_id, seq in items:
                    pipe.set(self._index(provider, message_id), f"{seq} {name}", ex=REPORT_INDEX_TTL)
                await pipe.execute()

    async def report(self, provider: str, message_id: str, status: Status | None) -> bool:
        async with redis_guard():
            found = await self.redis.get(self._index(provider, message_id.strip()))
            if found is None or status is None:
                return found is not None
            seq, name = _s(found).split(" ", 1)
            await self._report(keys=[self._k(name, "h"), self._k(name, "s")], args=[int(seq), status.value])
        return True

    async def close(self) -> None:
        return None  # the client belongs to the RedisStore


def open_broadcast_store(store: Any) -> BroadcastStore:
    """The broadcast store next to a session store: Redis (same client and prefix) or memory."""
    from .memory_store import MemoryBroadcastStore

    client = getattr(store, "redis", None)
    if client is not None:
        return RedisBroadcastStore(client, getattr(store, "prefix", "alap:"))
    return MemoryBroadcastStore()
