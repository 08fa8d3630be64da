"""The Redis ledger, next to the sessions (same client and prefix), under the hash tag {ledger}."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..redis_keyspace import RedisKeyspace, hash_tag
from .base import Ledger
from .records import (RechargeLease, RechargeRecord, RechargeState, decode_record_or_none, encode_record,
                      new_lease_owner)

if TYPE_CHECKING:
    import redis.asyncio as aioredis


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

# KEYS: 1 record, 2 old state index, 3 new state index, 4 the record's lease
# ARGV: 1 expected version, 2 data, 3 new state, 4 new version, 5 id, 6 created_at,
#       7 lease owner ('' = unfenced write). Returns 1 written, 0 version changed, -1 fenced.
_SWAP = """
if ARGV[7] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[7] then return -1 end
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


class RedisLedger(RedisKeyspace, Ledger):
    """The ledger on an existing redis.asyncio client (the RedisStore's), under `prefix`."""

    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "alap:") -> None:
        from ..redis_client import NodeScript, is_cluster

        super().__init__(client, prefix)
        self.base = self.key(hash_tag("ledger"), "")  # one slot for every ledger key
        script = (lambda text: NodeScript(client, text)) if is_cluster(client) else client.register_script
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
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    # -- records -----------------------------------------------------------------------------------
    async def _insert(self, record: RechargeRecord, enqueue: bool) -> tuple[str, str | None]:
        keys = [f"{self.base}k:{record.idempotency_key}", self._record_key(record.id), self._state_key(record.state),
                self._all_key, self._queue_key, f"{self.base}x:{record.external_trx_id}",
                f"{self.base}f:{record.refid}"]
        args = [record.id, encode_record(record), record.state.value, record.version, repr(record.created_at),
                "1" if enqueue else "0", repr(time.time())]
        async with self._guard():
            result = await self._insert_script(keys=keys, args=args)
        outcome = self._text(result[0])
        return outcome, (self._text(result[1]) if len(result) > 1 else None)

    async def get(self, record_id: str) -> RechargeRecord | None:
        async with self._guard():
            data = await self.redis.hget(self._record_key(record_id), "data")
        return decode_record_or_none(data)

    async def find(self, idempotency_key: str) -> RechargeRecord | None:
        async with self._guard():
            record_id = await self.redis.get(f"{self.base}k:{idempotency_key}")
        return await self.get(self._text(record_id)) if record_id else None

    async def _swap(self, old: RechargeRecord, new: RechargeRecord, owner: str | None = None) -> int:
        keys = [self._record_key(old.id), self._state_key(old.state), self._state_key(new.state),
                self._lease_prefix + old.id]
        args = [str(old.version), encode_record(new), new.state.value, str(new.version), old.id, repr(old.created_at),
                owner or ""]
        async with self._guard():
            return int(await self._swap_script(keys=keys, args=args))

    async def _records(self, ids: list[Any]) -> list[RechargeRecord]:
        if not ids:
            return []
        async with self._guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                for record_id in ids:
                    pipe.hget(self._record_key(self._text(record_id)), "data")
                values = await pipe.execute()
        return [r for r in (decode_record_or_none(v) for v in values) if r is not None]

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
                    now: float | None = None) -> list[RechargeLease]:
        at = time.time() if now is None else now
        owner = new_lease_owner(worker_id)
        lease_ms = max(1, int(lease * 1000))
        async with self._guard():
            ids = await self._claim_script(keys=[self._queue_key],
                                           args=[repr(at), limit, lease_ms, owner, self._lease_prefix,
                                                 limit * 4 + 16])
        return [RechargeLease(self._text(i), owner, at + lease) for i in ids]

    async def renew(self, lease: RechargeLease, seconds: float) -> RechargeLease | None:
        until = time.time() + seconds
        async with self._guard():
            ok = await self._renew_script(keys=[self._lease_prefix + lease.record_id, self._queue_key],
                                          args=[lease.owner, max(1, int(seconds * 1000)), lease.record_id,
                                                repr(until)])
        return RechargeLease(lease.record_id, lease.owner, until) if ok else None

    async def release(self, lease: RechargeLease, due_at: float | None) -> bool:
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


