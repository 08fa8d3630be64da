"""Redis store (redis.asyncio + hiredis). Each hop costs two round trips: a claim script
(owner check + dedupe + lock + load, pipelined with the profile read on mo-init) and a commit
script (compare tokens, save with TTL, mark the request done, unlock).

Keys of one session share the hash tag `{session id}` so the scripts also run on Redis
Cluster; the profile (keyed by subscriber) lives in its own slot: read in the claim's
pipeline, changed by its own one-key merge script, never inside a session script.

Redis Cluster (`REDIS_URL=redis+cluster://host:port`, redis.asyncio.cluster.RedisCluster): the
scripts are routed by their keys' slot (one node per session). redis-py refuses EVALSHA inside
a cluster pipeline, so on mo-init the claim script and the profile GET (another slot, maybe
another node) are sent concurrently as two commands: still one round trip of wall time. A
NOSCRIPT (new, restarted or promoted master) loads the script on that node only and retries.
The client learns the slot map before its first command. The single-node path is unchanged.
"""
from __future__ import annotations

import asyncio
import math
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from .base import DEDUPE_TTL, LOCK_TTL, PROFILE_TTL, ResumeKey, ResumeWrite, Store, StoreUnavailable, decode_profile
from .funnel import RETENTION_SECONDS
from .redis_funnel import FUNNEL_COMMIT, FUNNEL_SWEEP, RedisFunnel
from .redis_errors import redis_guard
from .redis_keyspace import RedisKeyspace, hash_tag
from .redis_line import RedisLine
from .versions import RedisVersions

# The hop protocol of server/store/base.py. The dedupe record (KEYS seen) holds the claim token
# of the delivery that owns the request, '1' once committed (done: a shared integer, the
# cheapest value Redis holds, and dedupe records outnumber sessions); the owner key holds the
# subscriber address the session belongs to. All of a session's keys share its hash tag.

# KEYS seen, lock, session, owner   ARGV token, dedupe ttl (s), lock ttl (ms), owner address or ''
_CLAIM = """
if ARGV[4] ~= '' then
  local owner = redis.call('GET', KEYS[4])
  if owner and owner ~= ARGV[4] then return {'foreign'} end
end
local seen = redis.call('GET', KEYS[1])
if seen == '1' then return {'duplicate'} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= seen then return {'busy'} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return {'ok', redis.call('GET', KEYS[3])}
"""

# KEYS lock, session, seen, owner   ARGV token, lock ttl (ms), '1' when a request is checked, owner or ''
_LOCK = """
if ARGV[3] == '1' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return {'superseded'} end
if ARGV[4] ~= '' then
  local owner = redis.call('GET', KEYS[4])
  if owner and owner ~= ARGV[4] then return {'foreign'} end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) == false then return {'busy'} end
return {'ok', redis.call('GET', KEYS[2])}
"""

# KEYS lock, session, seen, owner [, open index]
# ARGV token, session or '', ttl (s), '1' when a request is marked, owner or '' [, index member or '', score]
_COMMIT_SAVE = """
if ARGV[4] == '1' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return 'superseded' end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lost' end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2], KEYS[4])
else
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[3]) end
end
redis.call('DEL', KEYS[1])
if ARGV[4] == '1' then redis.call('SET', KEYS[3], '1', 'KEEPTTL') end
"""
_COMMIT = _COMMIT_SAVE + "return 'saved'\n"

# Single node: the commit also keeps the open-sessions index (a sorted set scored by expiry,
# +0.5 once the subscriber has replied), in the same round trip.
_COMMIT_TRACKED = _COMMIT_SAVE + """
if ARGV[6] ~= '' then
  if ARGV[2] == '' then redis.call('ZREM', KEYS[5], ARGV[6]) else redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6]) end
end
""" + FUNNEL_COMMIT + """return 'saved'
"""

# Single node, a hop that keeps or forgets a resume record (server/bdapps/resume.py): the record
# (the last key; data and TTL the last two arguments, '' forgets it) is taken off KEYS and ARGV,
# the commit above runs as a function on what is left (it reads #KEYS and #ARGV), and the record
# is written only when the session was saved. Same round trip, no stale record.
_COMMIT_TRACKED_RESUME = """
local resume_key, resume_ttl = table.remove(KEYS), table.remove(ARGV)
local resume_data = table.remove(ARGV)
local function commit()
""" + _COMMIT_TRACKED + """end
local outcome = commit()
if outcome == 'saved' then
  if resume_data == '' then redis.call('DEL', resume_key)
  else redis.call('SET', resume_key, resume_data, 'EX', resume_ttl) end
end
return outcome
"""

# Pop the sessions whose expiry passed: each is counted by exactly one process.
_SWEEP = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, 10000)
for i = 1, #gone, 2 do redis.call('ZREM', KEYS[1], gone[i]) end
""" + FUNNEL_SWEEP + """return gone
"""

# KEYS lock, seen   ARGV token, '1' when a request is marked
_RELEASE = """
if ARGV[2] == '1' then
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'superseded' end
  redis.call('SET', KEYS[2], '1', 'KEEPTTL')
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'released'
"""

# Change some fields of a JSON profile in place (cjson is built into Redis' Lua), so writers
# of different fields never undo each other. KEYS profile   ARGV ttl (s), JSON object of changes
_MERGE_PROFILE = """
local profile = {}
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then profile = decoded end
end
for field, value in pairs(cjson.decode(ARGV[2])) do profile[field] = value end
redis.call('SET', KEYS[1], cjson.encode(profile), 'EX', ARGV[1])
return 1
"""


CLUSTER_SCHEME = "redis+cluster://"
MAX_CONNECTIONS = 100  # per process (per node on a cluster), when the caller does not size it
SOCKET_TIMEOUT = 1.0  # a dead or hung Redis fails a hop fast (503 E1603, BDApps redelivers)


def connect(url: str, *, max_connections: int = MAX_CONNECTIONS, **options: Any) -> aioredis.Redis:
    """A client with timeouts short enough that a dead Redis fails a hop fast.

    Single node: a blocking pool of `max_connections`. redis-py's default pool fails a command
    at once (MaxConnectionsError) when it is exhausted; this one makes the command wait for a
    connection (up to the socket timeout), so a burst is slower, never refused by accident.
    The hop path's scripts do not use this pool (RedisLine below), and hops are bounded per
    worker (server/bdapps/admission.py)."""
    defaults: dict[str, Any] = dict(socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=0.5,
                                    health_check_interval=15, retry_on_timeout=False)
    defaults.update(options)
    if is_cluster_url(url):
        from redis.asyncio.cluster import RedisCluster

        defaults.pop("health_check_interval", None)
        defaults.pop("retry_on_timeout", None)  # not a RedisCluster option: it has `retry`
        # No retry of a failed command, as on a single node. RedisCluster would re-send a
        # claim after a timeout or a dropped connection (3 times by default): if the script
        # had run, the re-send finds the dedupe key and the hop is dropped as a duplicate, and
        # a hung master would hold a hop for 4 s. Failing at once answers BDApps 503 E1603 and
        # it redelivers; the failure also makes the client re-read the slot map (failover).
        # MOVED/ASK redirections (resharding) are followed all the same: they are not retries.
        defaults.setdefault("retry", Retry(NoBackoff(), 0))
        return RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME):],  # type: ignore[return-value]
                                     max_connections=max_connections, **defaults)
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                    timeout=SOCKET_TIMEOUT, **defaults)
    return aioredis.Redis.from_pool(pool)


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def is_cluster(client: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


class _NodeScript:
    """A script on Redis Cluster, called like redis-py's Script (`keys=`, `args=`).

    redis-py's Script answers NOSCRIPT with SCRIPT LOAD on every primary, which fails while
    any one of them is down, so sessions on the healthy masters would fail too. This loads it
    only on the node that owns the keys' slot (a new, restarted or promoted master)."""

    def __init__(self, client: Any, script: str) -> None:
        self.client = client
        self.script = script
        self.sha = client.register_script(script).sha

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            node = self.client.get_node_from_key(keys[0])
            await self.client.execute_command("SCRIPT LOAD", self.script, target_nodes=node)
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)


class _LineScript:
    """A script on a single node, called like redis-py's Script (`keys=`, `args=`) but sent as
    a bare EVALSHA on the store's RedisLine (server/store/redis_line.py explains why)."""

    def __init__(self, client: Any, line: RedisLine, script: str) -> None:
        self.line = line
        self.script = script
        self.sha = client.register_script(script).sha

    async def __call__(self, keys: list[str], args: list[Any], *also: Any) -> Any:
        """The script's result; with `also` (more commands, sent in the same write) the list of
        every result, error replies as exceptions."""
        for attempt in (1, 2):
            replies = await self.line.call(("EVALSHA", self.sha, len(keys), *keys, *args), *also)
            if isinstance(replies[0], NoScriptError) and attempt == 1:  # Redis restarted or flushed
                await self.line.call(("SCRIPT", "LOAD", self.script))
                continue
            if isinstance(replies[0], Exception):
                raise replies[0]
            return replies if also else replies[0]
        raise AssertionError("unreachable")


class RedisStore(RedisFunnel, RedisKeyspace, Store):
    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "alap:") -> None:
        super().__init__(client, prefix)
        self.cluster = is_cluster(client)
        self.line: RedisLine | None = None
        if self.cluster:
            script = lambda text: _NodeScript(client, text)  # noqa: E731
        else:
            pool = client.connection_pool
            self.line = RedisLine(pool, pool.max_connections, SOCKET_TIMEOUT)
            script = lambda text: _LineScript(client, self.line, text)  # noqa: E731
        self._claim_script = script(_CLAIM)
        self._lock_script = script(_LOCK)
        # On a cluster the index lives in its own slot, so the commit script cannot touch it.
        self._commit_script = script(_COMMIT if self.cluster else _COMMIT_TRACKED)
        self._commit_resume_script = script(_COMMIT_TRACKED_RESUME)  # single node only
        self._release_script = script(_RELEASE)
        self._sweep_script = script(_SWEEP)
        self._merge_profile_script = script(_MERGE_PROFILE)
        self.versions = RedisVersions(self)
        if self.cluster:  # the single-node hop path stays as it is (benchmarked)
            self._guard = self._cluster_guard  # type: ignore[method-assign]
            self._with_profile = self._with_profile_cluster  # type: ignore[method-assign]

    @classmethod
    def from_url(cls, url: str, prefix: str = "alap:", *, max_connections: int = MAX_CONNECTIONS) -> "RedisStore":
        return cls(connect(url, max_connections=max_connections), prefix)

    # -- keys ------------------------------------------------------------------------------
    # A session's keys share its hash tag: the claim and commit scripts touch them together.
    def _session_key(self, sid: str) -> str:
        return self.key(hash_tag(sid), "s")

    def _lock_key(self, sid: str) -> str:
        return self.key(hash_tag(sid), "lock")

    def _seen_key(self, sid: str, request_id: str | None) -> str:
        return self.key(hash_tag(sid), "rq", request_id or "")

    def _owner_key(self, sid: str) -> str:
        return self.key(hash_tag(sid), "o")

    def profile_key(self, address: str) -> str:
        return self.key("p", hash_tag(address))

    def resume_key(self, key: ResumeKey) -> str:
        """Next to the subscriber's profile (same hash tag): read in the same round trip."""
        return self.key("r", hash_tag(key.subscriber), key.service)

    @property
    def open_key(self) -> str:
        return self.key("open")

    @asynccontextmanager
    async def _cluster_guard(self) -> AsyncIterator[None]:
        """Cluster: learn the slot map before the first command. redis-py initializes lazily,
        and commands sent concurrently before that are routed without their slot (wrong node,
        then a re-initialization that closes connections other commands are using)."""
        async with redis_guard():
            await self.redis.initialize()  # once; later calls return at once (and after a failover)
            yield

    async def _with_profile(self, script, keys: list[str], args: list[Any], profile_of: str | None,
                            also: list[tuple[str, tuple]] = ()):
        """Run `script`, read the profile when asked, and send the `also` commands (name, args),
        all in one round trip: (script result, profile or None, [results of `also`])."""
        reads = [("get", (self.profile_key(profile_of),))] if profile_of is not None else []
        async with self._guard():
            if not reads and not also:
                return await script(keys=keys, args=args), None, []
            # The script and the reads in one write: one round trip (the commands are GETs, whose
            # raw replies are what redis-py's pipeline would give).
            result, *rest = await script(keys, args, *((name.upper(), *command_args)
                                                       for name, command_args in (*reads, *also)))
            for outcome in rest:
                if isinstance(outcome, Exception):
                    raise outcome
            return result, decode_profile(rest[0]) if reads else None, rest[len(reads):]

    async def _with_profile_cluster(self, script, keys: list[str], args: list[Any], profile_of: str | None,
                                    also: list[tuple[str, tuple]] = ()):
        """Cluster: the script, the profile GET and the `also` commands go out together (several
        slots, maybe several nodes)."""
        reads = [("get", (self.profile_key(profile_of),))] if profile_of is not None else []
        async with self._guard():
            if not reads and not also:
                return await script(keys=keys, args=args), None, []
            result, *rest = await asyncio.gather(
                script(keys=keys, args=args),
                *(getattr(self.redis, name)(*command_args) for name, command_args in (*reads, *also)),
                return_exceptions=True)
            for outcome in (result, *rest):
                if isinstance(outcome, BaseException):
                    raise outcome
            return result, decode_profile(rest[0]) if reads else None, rest[len(reads):]

    # -- primitives ------------------------------------------------------------------------
    async def _claim(self, session_id, request_id, token, owner, profile_of, resume_of):
        keys = [self._seen_key(session_id, request_id), self._lock_key(session_id), self._session_key(session_id),
                self._owner_key(session_id)]
        also = [("get", (self.resume_key(resume_of),))] if resume_of is not None else []
        result, profile, extra = await self._with_profile(
            self._claim_script, keys, [token, DEDUPE_TTL, int(LOCK_TTL * 1000), owner or ""], profile_of, also)
        status = _text(result[0])
        if status != "ok":
            return status, None, None, None
        return "ok", result[1], profile, extra[0] if extra else None

    async def _lock(self, session_id, token, request_id, owner, profile_of):
        keys = [self._lock_key(session_id), self._session_key(session_id), self._seen_key(session_id, request_id),
                self._owner_key(session_id)]
        args = [token, int(LOCK_TTL * 1000), "1" if request_id else "", owner or ""]
        result, profile, _ = await self._with_profile(self._lock_script, keys, args, profile_of)
        status = _text(result[0])
        if status != "ok":
            return status, None, None
        return "ok", result[1], profile

    async def _commit(self, lease, session, ttl, answered, funnel=None, resume=None):
        sid = lease.session_id
        keys = [self._lock_key(sid), self._session_key(sid), self._seen_key(sid, lease.request_id),
                self._owner_key(sid)]
        args = [lease.token, session or b"", ttl, "1" if lease.request_id else "", lease.owner or ""]
        # Whole seconds, rounded up past the key's own expiry; the half marks "answered".
        score = math.ceil(time.time() + ttl) + (0.5 if answered else 0.0)
        async with self._guard():
            if not self.cluster:
                tracked = ["", 0] if answered is None else [sid, score]
                funnel_keys, funnel_args = self._funnel_script_args(funnel, answered is not None)
                keys, args = [*keys, self.open_key, *funnel_keys], [*args, *tracked, *funnel_args]
                if resume is not None:
                    return _text(await self._commit_resume_script(keys=[*keys, self.resume_key(resume.key)],
                                                                  args=[*args, resume.data or b"", resume.ttl]))
                return _text(await self._commit_script(keys=keys, args=args))
            outcome = await self._commit_cluster(keys, args, resume)
            if outcome == "saved" and answered is not None:
                if session is None:
                    await self.redis.zrem(self.open_key, sid)
                else:
                    await self.redis.zadd(self.open_key, {sid: score})
            if outcome == "saved" and funnel is not None:
                await self._count_cluster(sid, funnel, answered is not None and session is not None, ttl)
            return outcome

    async def _commit_cluster(self, keys: list[str], args: list[Any], resume: ResumeWrite | None) -> str:
        """Cluster: the resume record lives in the subscriber's slot, so the commit script cannot
        write it; both are sent together (one round trip of wall time). The record is written
        whatever the commit found, so when the session was not saved it is forgotten afterwards
        (a rare second round trip): no offer rather than a stale screen."""
        if resume is None:
            return _text(await self._commit_script(keys=keys, args=args))
        key = self.resume_key(resume.key)
        write = ("delete", (key,)) if resume.data is None else ("set", (key, resume.data, resume.ttl))
        result, _, _ = await self._with_profile(self._commit_script, keys, args, None, [write])
        outcome = _text(result)
        if outcome != "saved" and resume.data is not None:
            await self.redis.delete(key)
        return outcome

    async def get_resume(self, key: ResumeKey):
        async with self._guard():
            return await self.redis.get(self.resume_key(key))

    async def count_active(self) -> int:
        async with self._guard():
            return int(await self.redis.zcount(self.open_key, f"({time.time()}", "+inf"))

    async def sweep_expired(self) -> tuple[int, int]:
        async with self._guard():
            if self.cluster:
                gone = await self._sweep_script(keys=[self.open_key], args=[time.time()])
                await self._abandon_cluster([m.decode() if isinstance(m, bytes) else m for m in gone[0::2]])
            else:
                gone = await self._sweep_script(keys=[self.open_key, self.waiting_key],
                                                args=[time.time(), RETENTION_SECONDS])
        scores = [float(score) for score in gone[1::2]]
        abandoned = sum(1 for score in scores if score % 1 >= 0.25)
        return len(scores) - abandoned, abandoned

    async def _release(self, lease):
        sid = lease.session_id
        async with self._guard():
            return _text(await self._release_script(keys=[self._lock_key(sid), self._seen_key(sid, lease.request_id)],
                                                    args=[lease.token, "1" if lease.request_id else ""]))

    async def _get_profile(self, address):
        async with self._guard():
            return await self.redis.get(self.profile_key(address))

    async def _get_profiles(self, addresses):
        if not addresses:
            return []
        # Profiles live in different cluster slots: a cluster client splits the read per node.
        mget = getattr(self.redis, "mget_nonatomic", None) or self.redis.mget
        async with self._guard():
            return await mget([self.profile_key(a) for a in addresses])

    async def _set_profile(self, address, data):
        async with self._guard():
            await self.redis.set(self.profile_key(address), data, ex=PROFILE_TTL)

    async def _merge_profile(self, address, changes):
        async with self._guard():
            await self._merge_profile_script(keys=[self.profile_key(address)],
                                             args=[PROFILE_TTL, msgspec.json.encode(changes)])

    async def get_session(self, session_id):
        async with self._guard():
            return await self.redis.get(self._session_key(session_id))

    async def ping(self) -> bool:
        """Single node: PING. Cluster: PING every primary (one unreachable primary fails the
        sessions hashed to its slots, so the store is reported down)."""
        try:
            async with self._guard():
                if self.cluster:
                    return bool(await self.redis.ping(target_nodes=self.redis.PRIMARIES))  # type: ignore[call-arg]
                return bool(await self.redis.ping())
        except StoreUnavailable:
            return False

    async def close(self) -> None:
        if self.line is not None:
            await self.line.close()
        await self.redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
