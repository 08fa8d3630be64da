"""The hop path stays at two Redis round trips with resuming and pinned versions: the resume
record is read in the mo-init claim's round trip and written in the commit's; a session on a
version this server already holds needs no extra read; an older version is read once per
process. Round trips are counted as writes to the socket by the Redis client's connections
(a pipeline is one write) that name the hop's session or read a flow version (the periodic jobs
of server/app.py, which may run meanwhile, do neither), whoever writes: redis-py or the store's
own line (server/store/redis_line.py)."""
from __future__ import annotations

import uuid

from redis.asyncio.connection import Connection

from server.store import redis_hop_scripts
from server.store.redis_backend import RedisStore, connect

from ..conftest import start_stack
from .test_deploy_pinning import close, flows_v1, flows_v2, hop


class CountingConnection(Connection):
    """Counts the writes to its socket that name the session being counted or read a flow
    version, whoever writes (redis-py's commands and pipelines, the store's RedisLine)."""
    writes = 0
    session = b"-"

    async def _connect(self) -> None:
        await super()._connect()
        writer = self._writer
        write, writelines = writer.write, writer.writelines

        def counted_write(data) -> None:
            CountingConnection.count(bytes(data))
            write(data)

        def counted_writelines(chunks) -> None:
            chunks = list(chunks)
            CountingConnection.count(b"".join(bytes(c) for c in chunks))
            writelines(chunks)

        writer.write, writer.writelines = counted_write, counted_writelines

    @staticmethod
    def count(packed: bytes) -> None:
        if CountingConnection.session in packed or (b"fv:" in packed and b"EXPIRE" not in packed):
            CountingConnection.writes += 1


async def counted(work, session_id: str) -> tuple[int, dict]:
    CountingConnection.writes, CountingConnection.session = 0, session_id.encode()
    screen = await work
    return CountingConnection.writes, screen


async def test_each_hop_is_two_round_trips_and_an_older_version_is_read_once(aiohttp_server, redis_url, tmp_path):
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    old = await start_stack(aiohttp_server, store=RedisStore(connect(redis_url), prefix),
                            flows_dir=flows_v1(tmp_path), default_language="en")
    new = await start_stack(aiohttp_server, flows_dir=flows_v2(tmp_path), default_language="en",
                            store=RedisStore(connect(redis_url, connection_class=CountingConnection), prefix))
    try:
        # Every hop script in Redis' cache first: a script Redis does not hold costs its first
        # caller a NOSCRIPT and a second send, whichever test happened to run it before.
        for script in (redis_hop_scripts.CLAIM, redis_hop_scripts.LOCK, redis_hop_scripts.COMMIT_TRACKED,
                       redis_hop_scripts.COMMIT_TRACKED_RESUME, redis_hop_scripts.RELEASE):
            await new.store.redis.script_load(script)
        warm = f"warm-{uuid.uuid4().hex[:6]}"  # opens connections
        for n, message in enumerate(["*213#", "1", "1250", "4"]):
            await hop(new, warm, n, message, "tel:8801700000010")

        steady = f"steady-{uuid.uuid4().hex[:6]}"
        for n, message in enumerate(["*213#", "1", "1250"]):  # the new version: 1 = split a bill
            trips, _ = await counted(hop(new, steady, n, message, "tel:8801700000011"), steady)
            assert trips == 2, (n, trips)
        # a re-dial that finds the resume record: the offer is still two round trips, and so is "1"
        redial = f"redial-{uuid.uuid4().hex[:6]}"
        trips, offer = await counted(hop(new, redial, 0, "*213#", "tel:8801700000011"), redial)
        assert offer["message"].startswith("1. Continue where you left off") and trips == 2
        trips, again = await counted(hop(new, redial, 1, "1", "tel:8801700000011"), redial)
        assert again["message"].startswith("How many people") and trips == 2

        # a session that started on the old release: its first hop here reads the version once
        pinned = f"pinned-{uuid.uuid4().hex[:6]}"
        await hop(old, pinned, 0, "*213#", "tel:8801700000012")
        trips, screen = await counted(hop(new, pinned, 1, "2", "tel:8801700000012"), pinned)
        assert screen["message"].startswith("Enter the bill amount") and trips == 3  # old meaning of "2"
        trips, _ = await counted(hop(new, pinned, 2, "1250", "tel:8801700000012"), pinned)
        assert trips == 2  # compiled once, cached
        other = f"other-{uuid.uuid4().hex[:6]}"
        await hop(old, other, 0, "*213#", "tel:8801700000013")
        trips, _ = await counted(hop(new, other, 1, "2", "tel:8801700000013"), other)
        assert trips == 2  # another session of that version: no read either
    finally:
        await close([old, new])
