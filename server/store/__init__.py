"""Sessions, subscriber profiles, dedupe and locks behind one interface; the outbound message
log next to them (messages.py)."""
from __future__ import annotations

from .base import Claim, ForeignSession, HopSuperseded, LockTimeout, Profile, SessionLease, Store, StoreUnavailable
from .memory_backend import MemoryStore
from .messages import MESSAGE_TTL, MessageLog
from .messages_memory import MemoryMessageLog


def open_store(redis_url: str | None, prefix: str = "alap:", *, max_connections: int | None = None) -> Store:
    """Redis when a URL is given (at most `max_connections` per process, else redis-py's
    usual 100), else the in-process memory store."""
    if not redis_url:
        return MemoryStore()
    from .redis_backend import MAX_CONNECTIONS, RedisStore

    return RedisStore.from_url(redis_url, prefix, max_connections=max_connections or MAX_CONNECTIONS)


def open_message_log(store: Store | None = None, *, ttl: int = MESSAGE_TTL) -> MessageLog:
    """The log next to a store: Redis (same client, same prefix) for a RedisStore, else memory."""
    client = getattr(store, "redis", None)
    if client is not None:
        from .messages_redis import RedisMessageLog

        return RedisMessageLog(client, getattr(store, "prefix", "alap:"), ttl=ttl)
    return MemoryMessageLog(ttl)


__all__ = ["Claim", "ForeignSession", "HopSuperseded", "LockTimeout", "MemoryStore", "Profile", "SessionLease", "Store",
           "StoreUnavailable", "open_message_log", "open_store"]
