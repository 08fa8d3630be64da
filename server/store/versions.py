"""Published flow versions, where every worker can read them (one interface, a memory and a
Redis backend, like sessions).

`alap serve` publishes the versions it loads; a worker that meets a session pinned to a
version it does not hold fetches it from here (server/engine/pinning.py). A version expires
`ttl` seconds after the last process that runs it said so (`keep`, every few seconds from
server/app.py), and that ttl covers a session's lifetime plus the resume window, so a version
outlives every session that uses it. Versions are opaque bytes here (the engine owns their
JSON) and cost nothing on the hop path.

The memory backend serves `alap dev`: it keeps replaced versions after a hot reload, so live
sessions stay pinned there too.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, AsyncIterator

if TYPE_CHECKING:
    from .memory_backend import MemoryStore
    from .redis_backend import RedisStore


class VersionStore(ABC):
    @abstractmethod
    async def publish(self, flow: str, version: str, data: bytes, ttl: int) -> None:
        """Store a version (again) for `ttl` seconds."""

    @abstractmethod
    async def fetch(self, flow: str, version: str) -> bytes | None: ...

    @abstractmethod
    async def keep(self, versions: list[tuple[str, str]], ttl: int) -> list[tuple[str, str]]:
        """Extend these versions to `ttl` seconds from now; returns those that were missing
        (the caller publishes them again)."""

    @abstractmethod
    async def live(self) -> dict[tuple[str, str], float]:
        """Every stored version: (flow, version) -> seconds it has left."""

    @abstractmethod
    def sessions(self) -> AsyncIterator[bytes]:
        """Every open USSD session's data (for counting sessions per version)."""


class MemoryVersions(VersionStore):
    def __init__(self, store: "MemoryStore") -> None:
        self.store = store
        self.items: dict[tuple[str, str], tuple[bytes, float]] = {}  # -> (data, expires monotonic)

    async def publish(self, flow, version, data, ttl):
        self.items[(flow, version)] = (data, self.store.clock() + ttl)

    def _get(self, key: tuple[str, str]) -> bytes | None:
        item = self.items.get(key)
        if item is None or item[1] < self.store.clock():
            self.items.pop(key, None)
            return None
        return item[0]

    async def fetch(self, flow, version):
        return self._get((flow, version))

    async def keep(self, versions, ttl):
        missing = []
        for key in versions:
            data = self._get(key)
            if data is None:
                missing.append(key)
            else:
                self.items[key] = (data, self.store.clock() + ttl)
        return missing

    async def live(self):
        now = self.store.clock()
        return {key: expires - now for key, (_, expires) in self.items.items() if expires > now}

    async def sessions(self):
        for session_id in list(self.store.sessions):
            data = self.store.sessions.get_live(session_id)
            if data is not None:
                yield data


class RedisVersions(VersionStore):
    """`{prefix}fv:{flow}:{version}` -> the version's data, with a TTL."""

    def __init__(self, store: "RedisStore") -> None:
        self.store = store

    def _key(self, flow: str, version: str) -> str:
        return self.store.key("fv", flow, version)

    async def publish(self, flow, version, data, ttl):
        async with self.store._guard():
            await self.store.redis.set(self._key(flow, version), data, ex=ttl)

    async def fetch(self, flow, version):
        async with self.store._guard():
            return await self.store.redis.get(self._key(flow, version))

    async def keep(self, versions, ttl):
        if not versions:
            return []
        async with self.store._guard():
            if self.store.cluster:  # keys in several slots: one command each
                kept = [await self.store.redis.expire(self._key(*key), ttl) for key in versions]
            else:
                async with self.store.redis.pipeline(transaction=False) as pipe:
                    for key in versions:
                        pipe.expire(self._key(*key), ttl)
                    kept = await pipe.execute()
        return [key for key, ok in zip(versions, kept) if not ok]

    async def live(self):
        found: dict[tuple[str, str], float] = {}
        prefix = f"{self.store.prefix}fv:"
        async with self.store._guard():
            async for raw in self.store.redis.scan_iter(match=f"{prefix}*", count=500):
                key = raw.decode() if isinstance(raw, bytes) else raw
                flow, _, version = key[len(prefix):].rpartition(":")
                ttl = await self.store.redis.ttl(key)
                if ttl > 0:
                    found[(flow, version)] = float(ttl)
        return found

    async def sessions(self):
        redis = self.store.redis
        async with self.store._guard():
            keys = [k async for k in redis.scan_iter(match=self.store._session_key("*"), count=500)]
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                values = [await redis.get(k) for k in chunk] if self.store.cluster else await redis.mget(chunk)
                for data in values:
                    if data is not None:
                        yield data
