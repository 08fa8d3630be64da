"""The Redis store on a real Redis Cluster (three masters on loopback, started here):
the store contract, sessions spread over every master, hops through the app, a master down."""
from __future__ import annotations

import asyncio
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import AsyncIterator, Iterator

import aiohttp
import pytest
import redis as sync_redis

from server.sandbox.bdapps import CALLBACK
from server.store import Profile, StoreUnavailable
from server.store.funnel import day_of
from server.store.redis_backend import RedisStore, connect

from tests.store import test_store_contract as contract
from tests.conftest import start_stack
from tests.app.test_scale_out import Serve, journey, start_gateway
from tests.optional_tools import in_ci

if not (shutil.which("redis-server") and shutil.which("redis-cli")):
    if in_ci():
        raise RuntimeError("CI: the Redis Cluster tests need redis-server and redis-cli on PATH")
    pytest.skip("Redis Cluster tests need redis-server and redis-cli on PATH", allow_module_level=True)


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = random.randrange(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class RedisClusterServers:
    """Three masters, no replicas, slots split by `redis-cli --cluster create`."""

    def __init__(self, masters: int = 3) -> None:
        self.ports = [cluster_port() for _ in range(masters)]
        self.dir = tempfile.mkdtemp(prefix="alap-cluster-")
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start_node(self, port: int) -> None:
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if sync_redis.Redis(port=port, socket_timeout=0.2).ping():
                    return
            except sync_redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {port} did not start")

    def stop_node(self, port: int) -> None:
        proc = self.procs.pop(port, None)
        if proc is not None:
            proc.terminate()
            proc.wait(10)

    def wait_ok(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(sync_redis.Redis(port=p, socket_timeout=0.5).cluster("info")["cluster_state"] == "ok"
                       for p in self.ports):
                    return
            except sync_redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def start(self) -> "RedisClusterServers":
        try:
            for port in self.ports:
                self.start_node(port)
            subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                            "--cluster-replicas", "0", "--cluster-yes"],
                           check=True, capture_output=True, timeout=60)
            self.wait_ok()
        except BaseException:
            self.cleanup()
            raise
        return self

    def node(self, port: int) -> sync_redis.Redis:
        return sync_redis.Redis(port=port, socket_timeout=1)

    def keys_by_node(self, prefix: str) -> dict[int, list[str]]:
        return {port: [k.decode() for k in self.node(port).scan_iter(match=f"{prefix}*", count=1000)]
                for port in self.ports}

    def cleanup(self) -> None:
        for port in list(self.procs):
            self.stop_node(port)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers().start()
    yield servers
    servers.cleanup()


@pytest.fixture
async def cluster_store(cluster: RedisClusterServers) -> AsyncIterator[RedisStore]:
    prefix = f"alap-cl-{uuid.uuid4().hex[:8]}:"
    store = RedisStore(connect(cluster.url), prefix)
    assert store.cluster
    yield store
    await store.close()
    for port, keys in cluster.keys_by_node(prefix).items():
        pipe = cluster.node(port).pipeline(transaction=False)
        for key in keys:  # one DEL per key: keys of one node still live in many slots
            pipe.delete(key)
        pipe.execute()


CONTRACT = [contract.test_claim_dedupes_locks_and_loads, contract.test_commit_with_a_stale_token_writes_nothing,
            contract.test_acquire_waits_for_the_holder, contract.test_commit_none_deletes_and_releases,
            contract.test_profiles_outlive_sessions_and_load_with_the_claim,
            contract.test_redis_session_ttl_and_json, contract.test_claim_survives_a_script_cache_flush,
            contract.test_a_redelivery_of_an_uncommitted_request_takes_the_hop_over,
            contract.test_a_waiting_delivery_taken_over_by_a_redelivery_gives_up,
            contract.test_a_session_refuses_other_addresses, contract.test_profile_fields_change_one_at_a_time]


@pytest.mark.parametrize("case", CONTRACT, ids=[c.__name__.removeprefix("test_") for c in CONTRACT])
async def test_store_contract_on_a_cluster(cluster_store: RedisStore, case):
    await case(cluster_store)


async def test_sessions_spread_over_every_master_each_on_one_node(cluster, cluster_store: RedisStore):
    for i in range(60):
        address = f"tel:88017{i:08d}"
        await cluster_store.set_profile(address, Profile(lang="en"))
        claim = await cluster_store.claim(f"spread-{i}", f"r{i}", profile_of=address)
        assert claim.status == "ok" and claim.lease.profile.lang == "en"
        assert await cluster_store.commit(claim.lease, b'{"v":1}', 60)
    placed = cluster.keys_by_node(cluster_store.prefix)
    node_of = {key: port for port, keys in placed.items() for key in keys}
    sessions = {port: [k for k in keys if k.endswith(":s")] for port, keys in placed.items()}
    assert all(sessions.values()), {p: len(s) for p, s in sessions.items()}  # every master holds sessions
    for i in range(60):
        session_key = cluster_store._session_key(f"spread-{i}")
        # the dedupe key lives with its session (one hash tag), the profile wherever its slot is
        assert node_of[cluster_store._seen_key(f"spread-{i}", f"r{i}")] == node_of[session_key]
        assert cluster_store.profile_key(f"tel:88017{i:08d}") in node_of
    assert any(node_of[cluster_store.profile_key(f"tel:88017{i:08d}")] != node_of[cluster_store._session_key(f"spread-{i}")]
               for i in range(60))  # so the claim really read a profile on another node


async def test_a_master_without_the_scripts_loads_them_again(cluster, cluster_store: RedisStore):
    await cluster_store.ping()
    flushed = cluster.ports[1]
    cluster.node(flushed).script_flush()  # as after that master restarted
    on_flushed = [f"nos-{i}" for i in range(200)
                  if cluster_store.redis.get_node_from_key(cluster_store._session_key(f"nos-{i}")).port == flushed][:5]
    assert on_flushed
    await cluster_store.set_profile("tel:1", Profile(lang="en"))
    for sid in on_flushed:
        claim = await cluster_store.claim(sid, "r1", profile_of="tel:1")
        assert claim.status == "ok" and claim.lease.profile.lang == "en"
        assert await cluster_store.commit(claim.lease, b"x", 60)
        lease = await cluster_store.acquire(sid)
        assert lease.session == b"x"
        await cluster_store.release(lease)


async def option(stack, screen: dict, label: str) -> str:
    """The key of a menu option by its label (turning pages with 98 when needed)."""
    for _ in range(5):
        for line in screen["message"].splitlines():
            key, _, text = line.partition(". ")
            if text.strip() == label:
                return key.strip()
        assert "98" in screen["message"], screen["message"]
        screen.update(await stack.reply(screen, "98"))
    raise AssertionError(f"no option {label!r}")


async def test_full_hops_through_the_app_on_a_cluster(aiohttp_server, cluster, cluster_store: RedisStore):
    stack = await start_stack(aiohttp_server, store=cluster_store, default_language="en")
    try:
        async def split(i: int) -> str:
            people, each = 2 + i % 5, 100 + i
            screen = await stack.dial(address=f"tel:88015{i:08d}")
            assert screen["message"].startswith("Welcome to Alap"), screen
            for message in ("2", str(people * each), str(people)):
                screen = await stack.reply(screen, message)
            assert screen["ussdOperation"] == "mt-fin"
            return screen["message"]

        finals = await asyncio.gather(*(split(i) for i in range(12)))
        assert finals == [f"Tk {(2 + i % 5) * (100 + i):,.2f} shared by {2 + i % 5}: Tk {100 + i:,.2f} each."
                          for i in range(12)]

        # the language choice is a profile write; the next dial reads it with the claim
        screen = await stack.dial(address="tel:8801500000099")
        screen = await stack.reply(screen, await option(stack, screen, "Language"))
        assert screen["message"].startswith("Choose your language")
        await stack.reply(screen, await option(stack, screen, "Bangla"))
        screen = await stack.dial(address="tel:8801500000099")
        assert screen["message"].startswith("আলাপে স্বাগতম")
        await stack.settle()
        async with stack.http.get(f"{stack.app_url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["store"] == "redis"
        # The funnel counters (written after the commit on a cluster: other slots) add up too.
        funnel = await cluster_store.funnel("demo", [day_of()])
        assert funnel.completed == 12 and funnel.entered["split_result"] == 12
        assert funnel.started == 14 and funnel.entered["main"] == 15  # 14 dials, back to main once
        assert await cluster_store.live_session("tel:8801500000099")
    finally:
        await stack.http.close()


async def test_alap_serve_on_a_cluster(aiohttp_server, cluster, tmp_path):
    """REDIS_URL=redis+cluster://... through `alap serve` (two workers), one session dialled."""
    gateway, gateway_url = await start_gateway(aiohttp_server)
    server = Serve(tmp_path, "serve", REDIS_URL=cluster.url, BDAPPS_BASE_URL=gateway_url, WEB_CONCURRENCY="2").start()
    gateway[CALLBACK].url = f"{server.url}/bdapps/ussd"
    session_id = f"cl-serve-{uuid.uuid4().hex[:8]}"
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_healthy(http, workers=2)
            messages, final = journey(7)
            async with http.post(f"{gateway_url}/phone/dial", json={"sessionId": session_id, "code": messages[0]}) as r:
                assert (await r.json())["message"].startswith("Welcome to Alap")
            for message in messages[1:]:
                async with http.post(f"{gateway_url}/phone/reply", json={"sessionId": session_id, "message": message}) as r:
                    screen = await r.json()
            assert screen["message"] == final and screen["ussdOperation"] == "mt-fin"
        server.proc.send_signal(signal.SIGTERM)
        assert await server.wait_exit(15) == 0, server.logs()
    finally:
        await server.close()
    for port, keys in cluster.keys_by_node(f"alap:{{{session_id}}}").items():
        for key in keys:
            cluster.node(port).delete(key)


async def test_a_master_down_fails_its_sessions_fast_and_recovers():
    """A cluster of its own: one master is stopped and started again."""
    cluster = RedisClusterServers().start()
    store = RedisStore(connect(cluster.url), "alap-down:")
    try:
        assert await store.ping()
        down = cluster.ports[2]
        on_down = next(f"d-{i}" for i in range(500)
                       if store.redis.get_node_from_key(store._session_key(f"d-{i}")).port == down)
        elsewhere = next(f"u-{i}" for i in range(500)
                         if store.redis.get_node_from_key(store._session_key(f"u-{i}")).port != down)
        cluster.stop_node(down)
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable):
            await store.claim(on_down, "r1")
        assert time.perf_counter() - started < 2.5  # a temporary error within the USSD budget
        assert await store.ping() is False  # /healthz: 503 while a master is unreachable
        claim = await store.claim(elsewhere, "r1")  # the other masters' sessions go on
        assert claim.status == "ok" and await store.commit(claim.lease, b"y", 60)

        cluster.start_node(down)  # same port, same nodes.conf: it takes its slots back
        cluster.wait_ok()
        for _ in range(50):
            if await store.ping():
                break
            await asyncio.sleep(0.1)
        assert await store.ping()
        claim = await store.claim(on_down, "r2")
        assert claim.status == "ok" and await store.commit(claim.lease, b"z", 60)
        assert await store.get_session(on_down) == b"z"
    finally:
        await store.close()
        cluster.cleanup()

