"""Scale-out: real `alap serve` processes (gunicorn + aiohttp workers) sharing one Redis.

The sandbox BDApps gateway runs in the test's event loop; the servers send their screens to it
over loopback. The test posts the callbacks itself so that it can choose, hop by hop, which
server receives them.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from server.sandbox.bdapps import CALLBACK, SCREENS, create_bdapps_fake

from tests.conftest import APP_ID, PASSWORD, free_port

ALAP = [sys.executable, "-m", "server"]
JOURNEY_LEN = 4


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT", "WEB_CONCURRENCY", "PROMETHEUS_"))}
    env.update(extra)
    return env


def mo(session_id: str, hop: int, message: str, address: str) -> dict[str, Any]:
    return {"applicationId": APP_ID, "sessionId": session_id, "requestId": f"{session_id}-{hop}",
            "ussdOperation": "mo-init" if hop == 0 else "mo-cont", "message": message,
            "sourceAddress": address, "encoding": "440", "version": "1.0"}


def journey(i: int) -> tuple[list[str], str]:
    """The bill splitter with amounts of its own, so that no session can get another's screen."""
    people, each = 2 + i % 5, 100 + i
    total = people * each
    return ["*213#", "2", str(total), str(people)], f"Tk {total:,.2f} shared by {people}: Tk {each:,.2f} each."


def expected_screen(hop: int) -> str:
    return ["Welcome to Alap", "Enter the bill amount in taka:", "How many people share it? (2-20)"][hop]


class Serve:
    """One `alap serve` in a process group of its own (the master and its workers)."""

    def __init__(self, tmp_path: Path, name: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        self.env = clean_env(PORT=str(self.port), BDAPPS_APP_ID=APP_ID, BDAPPS_PASSWORD=PASSWORD,
                             ALAP_DEFAULT_LANGUAGE="en", **env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Serve":
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([*ALAP, "serve"], env=self.env, stdout=out, stderr=err,
                                         start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.out.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found

    async def wait_healthy(self, http: aiohttp.ClientSession, *, workers: int = 1, timeout: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.logs()
            try:
                async with http.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                    started = workers == 1 or self._started() >= workers
                    if resp.status == 200 and len(self.workers()) >= workers and started:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"alap serve did not become healthy:\n{self.logs()}")

    def workers(self) -> list[int]:
        return children(self.pid)

    def _started(self) -> int:
        """Workers whose app has started (each publishes its flow versions once, at start-up).
        A worker that is only forked has not installed its own SIGTERM handler yet: a SIGTERM
        then is lost, and the master waits its graceful timeout (20 s) before killing it."""
        return sum(len(self.events(name)) for name in ("flow_versions_published", "flow_versions_not_published"))

    async def wait_exit(self, timeout: float) -> int | None:
        """Poll (never block: the sandbox gateway runs in this event loop)."""
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return self.proc.poll()

    async def close(self) -> None:
        """Clean-up: whatever of this process group is left gets SIGTERM (so that `alap serve`
        removes its metrics directory), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            if await self.wait_exit(10) is not None:
                return


@asynccontextmanager
async def only(server: Serve, pid: int) -> AsyncIterator[None]:
    """Make one worker take every new connection: the others are stopped (SIGSTOP) meanwhile,
    so they cannot accept from the shared listening socket. Use fresh client connections."""
    others = [other for other in server.workers() if other != pid]
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def tcp_peer_ports(pid: int) -> list[int]:
    """Remote ports of the established TCP connections a process holds (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and fields[9] in inodes:  # 01 = ESTABLISHED
                ports.append(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


async def start_gateway(aiohttp_server) -> tuple[Any, str]:
    gateway = create_bdapps_fake("http://127.0.0.1:9/unset", APP_ID, PASSWORD)
    server = await aiohttp_server(gateway)
    return gateway, str(server.make_url("")).rstrip("/")


async def next_screen(gateway: Any, session_id: str, timeout: float = 10) -> dict[str, Any]:
    return await asyncio.wait_for(gateway[SCREENS][session_id].get(), timeout)


async def delete_keys(redis_url: str, tag: str) -> None:
    """`alap serve` writes under the default prefix: remove this test's keys (shared Redis)."""
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"alap:{{{tag}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_two_servers_one_redis_alternate_hops(aiohttp_server, redis_url, tmp_path):
    """20 sessions x 4 hops at once; hop k of session i goes to server (i + k) % 2."""
    gateway, gateway_url = await start_gateway(aiohttp_server)
    servers = [Serve(tmp_path, f"serve{n}", REDIS_URL=redis_url, BDAPPS_BASE_URL=gateway_url) for n in range(2)]
    tag = f"mp{uuid.uuid4().hex[:8]}"
    try:
        for server in servers:
            server.start()
        async with aiohttp.ClientSession() as http:
            for server in servers:
                await server.wait_healthy(http)

            async def session(i: int) -> list[dict[str, Any]]:
                session_id, address = f"{tag}-{i}", f"tel:88017{i:08d}"
                messages, _ = journey(i)
                screens = []
                for hop, message in enumerate(messages):
                    server = servers[(i + hop) % 2]
                    async with http.post(f"{server.url}/bdapps/ussd", json=mo(session_id, hop, message, address)) as r:
                        assert r.status == 200 and (await r.json())["statusCode"] == "S1000"
                    screens.append(await next_screen(gateway, session_id))
                return screens

            results = await asyncio.gather(*(session(i) for i in range(20)))

        for i, screens in enumerate(results):
            _, final = journey(i)
            assert [s["ussdOperation"] for s in screens] == ["mt-cont"] * 3 + ["mt-fin"], (i, screens)
            for hop in range(3):
                assert screens[hop]["message"].startswith(expected_screen(hop)), (i, hop, screens[hop])
            assert screens[3]["message"] == final
            assert all(s["sessionId"] == f"{tag}-{i}" and s["destinationAddress"] == f"tel:88017{i:08d}"
                       for s in screens)
        client = aioredis.from_url(redis_url)
        try:
            assert [k async for k in client.scan_iter(match=f"alap:{{{tag}*}}:s")] == []  # finished sessions are gone
        finally:
            await client.aclose()
        for server in servers:
            server.proc.send_signal(signal.SIGTERM)
        for server in servers:
            assert await server.wait_exit(15) == 0, server.logs()
    finally:
        for server in servers:
            await server.close()
        await delete_keys(redis_url, tag)
    # each server did exactly its half (hop k of session i on server (i + k) % 2), and sent it
    for n, server in enumerate(servers):
        done = server.events("ussd_hop")
        assert all(e["sent"] for e in done), server.logs()
        assert sorted((e["session_id"], e["operation"]) for e in done) == sorted(
            (f"{tag}-{i}", "mo-init" if hop == 0 else "mo-cont")
            for i in range(20) for hop in range(JOURNEY_LEN) if (i + hop) % 2 == n)
        assert "Traceback" not in server.logs()


async def test_web_concurrency_2_serves_with_a_pool_per_worker(aiohttp_server, redis_url, tmp_path):
    gateway, gateway_url = await start_gateway(aiohttp_server)
    server = Serve(tmp_path, "serve", REDIS_URL=redis_url, BDAPPS_BASE_URL=gateway_url, WEB_CONCURRENCY="2").start()
    gateway[CALLBACK].url = f"{server.url}/bdapps/ussd"
    tag = f"wc{uuid.uuid4().hex[:8]}"
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_healthy(http, workers=2)
            assert len(server.workers()) == 2

            async def dial(i: int) -> str:
                messages, _ = journey(i)
                async with http.post(f"{gateway_url}/phone/dial", json={
                        "sessionId": f"{tag}-{i}", "address": f"tel:88018{i:08d}", "code": messages[0]}) as r:
                    screen = await r.json()
                assert screen["message"].startswith("Welcome to Alap"), screen
                for message in messages[1:]:
                    async with http.post(f"{gateway_url}/phone/reply", json={
                            "sessionId": f"{tag}-{i}", "address": f"tel:88018{i:08d}", "message": message}) as r:
                        assert r.status == 200, await r.text()
                        screen = await r.json()
                return screen["message"]

            finals = await asyncio.gather(*(dial(i) for i in range(10)))
            assert finals == [journey(i)[1] for i in range(10)]

            # Nothing was opened before the fork: the master holds no connection to Redis or to
            # the gateway; each worker has Redis connections of its own.
            for pid in server.workers():
                async with only(server, pid):
                    for _ in range(3):
                        async with aiohttp.ClientSession() as fresh:
                            async with fresh.get(f"{server.url}/healthz") as resp:
                                assert resp.status == 200 and (await resp.json())["store"] == "redis"
            gateway_port = int(gateway_url.rsplit(":", 1)[1])
            assert not {redis_port, gateway_port} & set(tcp_peer_ports(server.pid))
            assert all(redis_port in tcp_peer_ports(pid) for pid in server.workers())
        server.proc.send_signal(signal.SIGTERM)
        assert await server.wait_exit(15) == 0, server.logs()
    finally:
        await server.close()
        await delete_keys(redis_url, tag)
    assert "Traceback" not in server.logs()


async def test_metrics_add_up_across_workers(aiohttp_server, redis_url, tmp_path):
    """`alap serve` points prometheus-client at one directory for all workers (multiprocess
    mode): whichever worker answers /metrics counts every worker's callbacks. The private
    directory is removed when the server exits."""
    gateway, gateway_url = await start_gateway(aiohttp_server)
    server = Serve(tmp_path, "serve", REDIS_URL=redis_url, BDAPPS_BASE_URL=gateway_url, WEB_CONCURRENCY="2").start()
    tag = f"mx{uuid.uuid4().hex[:8]}"
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_healthy(http, workers=2)
            first, second = server.workers()
            for pid, requests in ((first, range(10)), (second, range(10, 30))):
                async with only(server, pid):
                    for i in requests:
                        async with aiohttp.ClientSession() as fresh:
                            async with fresh.post(f"{server.url}/bdapps/ussd",
                                                  json=mo(f"{tag}-{i}", 0, "*213#", "tel:8801700000001")) as r:
                                assert r.status == 200
            for i in range(30):
                await next_screen(gateway, f"{tag}-{i}")
            # the workers' sample files (mmapped) are in the private directory `alap serve` made
            mapped = {Path(line.split()[-1]).parent for pid in server.workers()
                      for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if line.endswith(".db")}
            assert len(mapped) == 1, mapped
            metrics_dir = mapped.pop()
            assert metrics_dir.name.startswith("alap-metrics-") and metrics_dir.is_dir()
            # both workers counted callbacks (each writes files named after its pid)
            assert {f"counter_{pid}.db" for pid in server.workers()} <= {p.name for p in metrics_dir.iterdir()}
            counted = 0.0
            async with http.get(f"{server.url}/metrics") as resp:
                assert resp.status == 200
                for line in (await resp.text()).splitlines():
                    if line.startswith("alap_callbacks_total{") and 'route="/bdapps/ussd"' in line and 'status="200"' in line:
                        counted += float(line.rsplit(" ", 1)[1])
            assert counted == 30
        server.proc.send_signal(signal.SIGTERM)
        assert await server.wait_exit(15) == 0, server.logs()
        assert not metrics_dir.exists()
    finally:
        await server.close()
        await delete_keys(redis_url, tag)


@pytest.mark.parametrize("extra, line", [
    ({"WEB_CONCURRENCY": "2"}, "alap: WEB_CONCURRENCY=2 needs REDIS_URL (the in-memory store is per process)"),
    ({"WEB_CONCURRENCY": "two", "REDIS_URL": "redis://127.0.0.1:1/0"},
     "alap: WEB_CONCURRENCY: must be a whole number from 1 to 64 (got 'two')"),
])
def test_serve_refuses_what_cannot_scale(extra, line):
    result = subprocess.run([*ALAP, "serve"], capture_output=True, text=True, timeout=30,
                            env=clean_env(BDAPPS_APP_ID="A", BDAPPS_PASSWORD="p", PORT=str(free_port()), **extra))
    assert result.returncode == 2
    assert result.stderr.strip() == line and result.stdout == ""
