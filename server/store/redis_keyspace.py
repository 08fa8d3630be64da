"""What the three Redis-backed classes share: the client, the key prefix, one failure mapping.

Sessions and profiles (redis_backend.py), the SMS message log (messages_redis.py) and the
recharge ledger (ledger/redis.py) all live under the configured prefix (ALAP_REDIS_PREFIX)
and turn Redis failures into StoreUnavailable the same way (redis_errors.py).
"""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from .redis_errors import redis_guard


def hash_tag(value: str) -> str:
    """`{value}`: keys with the same tag share a cluster slot (one script may touch them all)."""
    return "{" + value + "}"


class RedisKeyspace:
    def __init__(self, client: Any, prefix: str = "alap:") -> None:
        self.redis = client
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        """prefix + the parts joined by ":": key("m", "42") == "alap:m:42"."""
        return self.prefix + ":".join(parts)

    @staticmethod
    def _guard() -> AbstractAsyncContextManager[None]:
        return redis_guard()
