"""Opening a Redis client (single node or `redis+cluster://`) with hop-sized timeouts, and the
two ways a RedisStore runs a script other than redis-py's own: NodeScript (one cluster node)
and LineScript (a bare EVALSHA on the store's RedisLine)."""
from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from .redis_line import RedisLine

CLUSTER_SCHEME = "redis+cluster://"
MAX_CONNECTIONS = 100  # per process (per node on a cluster), when the caller does not size it
SOCKET_TIMEOUT = 1.0  # a dead or hung Redis fails a hop fast (503 E1603, BDApps redelivers)


def connect(url: str, *, max_connections: int = MAX_CONNECTIONS, **options: Any) -> aioredis.Redis:
    """A client with timeouts short enough that a dead Redis fails a hop fast.

    Single node: a blocking pool of `max_connections`. redis-py's default pool fails a command
    at once (MaxConnectionsError) when it is exhausted; this one makes the command wait for a
    connection (up to the socket timeout), so a burst is slower, never refused by accident.
    The hop path's scripts do not use this pool (they share one pipelined connection,
    server/store/redis_line.py), and hops are bounded per
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


class NodeScript:
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


class LineScript:
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
