"""The Redis side of the funnel counters (server/store/funnel.py) and of the subscriber ->
open-session pointer: the Lua appended to the hop's commit and to the sweep of the open-sessions
index (server/store/redis_backend.py), their keys, and the reads the console makes.

Keys: `<prefix>funnel:<flow>:<YYYYMMDD>` (a hash per flow and day, kept RETENTION_DAYS),
`<prefix>open:waiting` (open session -> "<funnel key>\t<state>" it waits in, read by the sweep
to count abandonment) and `<prefix>live:{<subscriber>}` (their open session id).
"""
from __future__ import annotations

from typing import Any

from .funnel import RETENTION_SECONDS, FunnelHop
from .redis_keyspace import hash_tag

# Funnel counters (server/store/funnel.py), appended to the tracked commit of
# server/store/redis_hop_scripts.py, after its KEYS lock, session, seen, owner, open index and ARGV
# token, session, ttl, request mark, owner, index member, score. KEYS[6] maps each open session
# to "<counter key>\t<state>" it waits in (read by the sweep), KEYS[7] points from the subscriber
# to their open session (the console's subscriber page), KEYS[8..] are the day hashes; ARGV[8]
# their retention, ARGV[9] the waiting value ('' = none), then pairs of (index into KEYS, field)
# to increment. Absent (5 keys) on commits that count nothing.
FUNNEL_FIRST_KEY = 6
FUNNEL_COMMIT = """
if #KEYS > 5 then
  if ARGV[9] == '' or ARGV[2] == '' then
    redis.call('HDEL', KEYS[6], ARGV[6])
    if redis.call('GET', KEYS[7]) == ARGV[6] then redis.call('DEL', KEYS[7]) end
  else
    redis.call('HSET', KEYS[6], ARGV[6], ARGV[9])
    redis.call('SET', KEYS[7], ARGV[6], 'EX', ARGV[3])
  end
  -- A day hash gets its retention when an increment creates one of its fields (the count is
  -- then 1, as it is when the hash is created): a few EXPIREs a day instead of one every hop.
  -- Only these increments and the sweep's (which sets a missing retention itself) create them.
  for i = 10, #ARGV, 2 do
    local key = KEYS[tonumber(ARGV[i])]
    if redis.call('HINCRBY', key, ARGV[i + 1], 1) == 1 then redis.call('EXPIRE', key, ARGV[8]) end
  end
end
"""

# Funnel (server/store/funnel.py), appended to the sweep: each popped session is counted as
# abandoned at the state it waited in (KEYS[2], written by FUNNEL_COMMIT). One HMGET reads where
# they all waited, the counts are summed per day hash and state in Lua, then written with one
# HINCRBY per distinct counter and one HDEL: a chunk costs a few calls, not six per session.
# Single node only.
FUNNEL_SWEEP = """
if KEYS[2] and #gone > 0 then
  local members = {}
  for i = 1, #gone, 2 do members[#members + 1] = gone[i] end
  local waiting = redis.call('HMGET', KEYS[2], unpack(members))
  local counts, keys = {}, {}
  for i = 1, #members do
    local value = waiting[i]
    if value then
      local tab = string.find(value, '\t', 1, true)
      local key = string.sub(value, 1, tab - 1)
      local fields = counts[key]
      if not fields then
        fields = {abandoned = 0}
        counts[key] = fields
        keys[#keys + 1] = key
      end
      fields.abandoned = fields.abandoned + 1
      local state = 'a:' .. string.sub(value, tab + 1)
      fields[state] = (fields[state] or 0) + 1
    end
  end
  for _, key in ipairs(keys) do
    for field, n in pairs(counts[key]) do redis.call('HINCRBY', key, field, n) end
    if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[2]) end
  end
  redis.call('HDEL', KEYS[2], unpack(members))
end
"""


class RedisFunnel:
    """Mixed into RedisStore (which provides `redis`, `key`, `cluster` and `_guard` through
    server/store/redis_keyspace.py)."""

    redis: Any
    key: Any

    def funnel_key(self, flow: str, day: str) -> str:
        return self.key("funnel", flow, day)

    @property
    def waiting_key(self) -> str:
        return self.key("open", "waiting")

    def live_key(self, subscriber: str) -> str:
        return self.key("live", hash_tag(subscriber))

    async def live_session(self, subscriber: str) -> str | None:
        async with self._guard():
            value = await self.redis.get(self.live_key(subscriber))
        return value.decode() if isinstance(value, bytes) else value

    def _funnel_waiting(self, funnel: FunnelHop, tracked: bool) -> str:
        if not tracked or funnel.waiting_in is None:
            return ""
        flow, state = funnel.waiting_in
        return f"{self.funnel_key(flow, funnel.day)}\t{state}"

    def _funnel_script_args(self, funnel: FunnelHop | None, tracked: bool) -> tuple[list[str], list]:
        """The keys and args FUNNEL_COMMIT reads (none when there is nothing to count)."""
        if funnel is None:
            return [], []
        keys = [self.waiting_key, self.live_key(funnel.subscriber)]
        index: dict[str, int] = {}
        pairs: list = []
        for flow, name in funnel.increments:
            key = self.funnel_key(flow, funnel.day)
            if key not in index:
                keys.append(key)
                index[key] = FUNNEL_FIRST_KEY - 1 + len(keys)  # 1-based, after the commit's own keys
            pairs += [index[key], name]
        return keys, [RETENTION_SECONDS, self._funnel_waiting(funnel, tracked), *pairs]

    async def _count_cluster(self, session_id: str, funnel: FunnelHop, tracked: bool, ttl: int) -> None:
        """Cluster: the day hashes live in their own slots, so they are written after the
        commit (one more round trip, as the open-sessions index is there)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for flow, name in funnel.increments:
                pipe.hincrby(self.funnel_key(flow, funnel.day), name, 1)
            for key in {self.funnel_key(flow, funnel.day) for flow, _ in funnel.increments}:
                pipe.expire(key, RETENTION_SECONDS)
            waiting = self._funnel_waiting(funnel, tracked)
            if waiting:
                pipe.hset(self.waiting_key, session_id, waiting)
                pipe.set(self.live_key(funnel.subscriber), session_id, ex=ttl)
            else:
                pipe.hdel(self.waiting_key, session_id)
            await pipe.execute()

    async def _funnel_hashes(self, flow, days):
        async with self._guard():
            async with self.redis.pipeline(transaction=False) as pipe:
                for day in days:
                    pipe.hgetall(self.funnel_key(flow, day))
                return await pipe.execute()

    async def _abandon_cluster(self, session_ids: list[str]) -> None:
        """Cluster: FUNNEL_SWEEP's work, command by command (the hashes are in other slots)."""
        for session_id in session_ids:
            waiting = await self.redis.hget(self.waiting_key, session_id)
            if not waiting:
                continue
            key, _, state = (waiting.decode() if isinstance(waiting, bytes) else waiting).partition("\t")
            await self.redis.hincrby(key, "abandoned", 1)
            await self.redis.hincrby(key, f"a:{state}", 1)
            await self.redis.expire(key, RETENTION_SECONDS)
            await self.redis.hdel(self.waiting_key, session_id)

