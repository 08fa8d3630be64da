"""What the `alap` commands share: a failure said in one line on stderr (never a traceback), and
a command's async work run against Redis, with the store closed after it."""
from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable


def fail(message: str, code: int = 2) -> int:
    print(f"alap: {message}", file=sys.stderr)
    return code


@asynccontextmanager
async def redis_store(settings: Any) -> AsyncIterator[Any]:
    """The store at REDIS_URL, closed on the way out."""
    from .store import open_store

    store = open_store(settings.redis_url, settings.redis_prefix)
    try:
        yield store
    finally:
        await store.close()


def run_on_redis(work: Callable[[], Awaitable[int]], unreachable: str = "Redis is unreachable") -> int:
    """asyncio.run(work()); Redis going away becomes one line, `unreachable (the reason)`."""
    from .store import StoreUnavailable

    try:
        return asyncio.run(work())
    except StoreUnavailable as exc:
        return fail(f"{unreachable} ({exc})")
