"""One mapping of Redis failures to StoreUnavailable, for every Redis-backed record type."""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import StoreUnavailable


class _RedisGuard:
    """Connection trouble, timeouts and server errors (cluster ones included) become
    StoreUnavailable: callers answer with a temporary error, never a 500 or a traceback.
    A class rather than an @asynccontextmanager generator: it wraps every store call."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            return False
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
        if isinstance(exc, (RedisError, RedisClusterException)):
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}"[:200]) from None
        return False


_GUARD = _RedisGuard()


def redis_guard() -> AbstractAsyncContextManager[None]:
    return _GUARD
