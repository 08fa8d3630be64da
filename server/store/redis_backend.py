"""Redis store (redis.asyncio + hiredis). Each hop costs two round trips: a claim script
(owner check + dedupe + lock + load, pipelined with the profile read on mo-init) and a commit
script (compare tokens, save with TTL, mark the request done, unlock).

Keys of one session share the hash tag `{session id}` so the scripts also run on Redis
Cluster; the profile (keyed by subscriber) lives in its own slot: read in the claim's
pipeline, changed by its own one-key merge script, never inside a session script.

Redis Cluster (`REDIS_URL=redis+cluster://host:port`, redis.asyncio.cluster.RedisCluster): the
scripts (redis_hop_scripts.py) are routed by their keys' slot (one node per session). redis-py refuses EVALSHA inside
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

from .base import DEDUPE_TTL, LOCK_TTL, PROFILE_TTL, ResumeKey, ResumeWrite, Store, StoreUnavailable, decode_profile
from .funnel import RETENTION_SECONDS
from .redis_client import (  # noqa: F401 (connect: re-exported for callers)
    MAX_CONNECTIONS, SOCKET_TIMEOUT, LineScript, NodeScript, connect, is_cluster)
from .redis_funnel import RedisFunnel
from .redis_hop_scripts import CLAIM, COMMIT, COMMIT_TRACKED, COMMIT_TRACKED_RESUME, LOCK, MERGE_PROFILE, RELEASE, SWEEP
from .redis_errors import redis_guard
from .redis_keyspace import RedisKeyspace, hash_tag
from .redis_line import RedisLine
from .versions import RedisVersions

# The expiry sweep (sweep_expired): sessions popped per script call, and calls per round (the
# round runs every MESSAGING_JOB_SECONDS in each worker, server/app.py; the rest waits a round).
SWEEP_CHUNK = 1000
SWEEP_CHUNKS = 50


class RedisStore(RedisFunnel, RedisKeyspace, Store):
    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "alap:") -> None:
        super().__init__(client, prefix)
        self.cluster = is_cluster(client)
        self.line: RedisLine | None = None
        if self.cluster:
            script = lambda text: NodeScript(client, text)  # noqa: E731
        else:
            pool = client.connection_pool
            self.line = RedisLine(pool, SOCKET_TIMEOUT)
            script = lambda text: LineScript(client, self.line, text)  # noqa: E731
        self._claim_script = script(CLAIM)
        self._lock_script = script(LOCK)
        # On a cluster the index lives in its own slot, so the commit script cannot touch it.
        self._commit_script = script(COMMIT if self.cluster else COMMIT_TRACKED)
        self._commit_resume_script = script(COMMIT_TRACKED_RESUME)  # single node only
        self._release_script = script(RELEASE)
        self._sweep_script = script(SWEEP)
        self._merge_profile_script = script(MERGE_PROFILE)
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
        """Pop and count the expired sessions, SWEEP_CHUNK at a time (redis_hop_scripts.py
        SWEEP: hops run between the chunks), at most SWEEP_CHUNKS chunks a round."""
        timed_out = abandoned = 0
        now = time.time()
        for _ in range(SWEEP_CHUNKS):
            async with self._guard():
                if self.cluster:
                    gone = await self._sweep_script(keys=[self.open_key], args=[now, RETENTION_SECONDS, SWEEP_CHUNK])
                    await self._abandon_cluster([m.decode() if isinstance(m, bytes) else m for m in gone[0::2]])
                else:
                    gone = await self._sweep_script(keys=[self.open_key, self.waiting_key],
                                                    args=[now, RETENTION_SECONDS, SWEEP_CHUNK])
            scores = [float(score) for score in gone[1::2]]
            replied = sum(1 for score in scores if score % 1 >= 0.25)
            timed_out, abandoned = timed_out + len(scores) - replied, abandoned + replied
            if len(scores) < SWEEP_CHUNK:
                break
        return timed_out, abandoned

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
