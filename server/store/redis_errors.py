"""One mapping of Redis failures to StoreUnavailable, for every Redis-backed record type."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import StoreUnavailable


@asynccontextmanager
async def redis_guard() -> AsyncIterator[None]:
    """Connection trouble, timeouts and server errors (cluster ones included) become
    StoreUnavailable: callers answer with a temporary error, never a 500 or a traceback."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
    except (RedisError, RedisClusterException) as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}"[:200]) from None
