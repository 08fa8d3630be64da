"""Sessions, subscriber profiles, dedupe and locks behind one interface."""
from __future__ import annotations

from .base import Claim, ForeignSession, HopSuperseded, Lease, LockTimeout, Profile, Store, StoreUnavailable
from .memory_backend import MemoryStore


def open_store(redis_url: str | None, prefix: str = "alap:") -> Store:
    """Redis when a URL is given, else the in-process memory store."""
    if not redis_url:
        return MemoryStore()
    from .redis_backend import RedisStore

    return RedisStore.from_url(redis_url, prefix)


__all__ = ["Claim", "ForeignSession", "HopSuperseded", "Lease", "LockTimeout", "MemoryStore", "Profile", "Store", "StoreUnavailable", "open_store"]
