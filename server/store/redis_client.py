"""Opening a Redis client (single node or `redis+cluster://`) with hop-sized timeouts, and
running a script on one cluster node (NodeScript)."""
from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

CLUSTER_SCHEME = "redis+cluster://"
MAX_CONNECTIONS = 1000  # per process (per node on a cluster)


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client with timeouts short enough that a dead Redis fails a hop fast.

    redis-py (>= 6) caps a pool at 100 connections and then fails the command at once
    (MaxConnectionsError) instead of waiting: a burst of more than 100 hops in one worker
    would answer 503. A hop holds a connection only for its round trip, so the cap is raised
    well above any worker's concurrency (Redis' own default maxclients is 10000)."""
    defaults: dict[str, Any] = dict(socket_timeout=1.0, socket_connect_timeout=0.5,
                                    health_check_interval=15, retry_on_timeout=False,
                                    max_connections=MAX_CONNECTIONS)
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
        return RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME):], **defaults)  # type: ignore[return-value]
    return aioredis.from_url(url, **defaults)


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
