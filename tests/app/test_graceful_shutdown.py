"""Graceful shutdown of `alap serve` (gunicorn + aiohttp workers), with a real signal while hops
are in flight: every acknowledged hop still gets its screen out, new callbacks are refused, and
the process exits 0 in bounded time."""
from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import aiohttp
import pytest

from server.sandbox.faults import FAULTS_KEY, Fault

from tests.app.test_scale_out import Serve, delete_keys, mo, next_screen, start_gateway

HOPS = 20
SEND_DELAY = 1.0  # the gateway answers each /ussd/send after this long
EXIT_BOUND = 10.0


@pytest.mark.parametrize("workers, target", [("1", "master"), ("2", "group")],
                         ids=["1-worker-sigterm-to-master", "2-workers-sigterm-to-process-group"])
async def test_sigterm_finishes_hops_in_flight_then_exits(aiohttp_server, redis_url, tmp_path, workers, target):
    """`master`: SIGTERM to gunicorn's master only (systemd, Kubernetes, `kill <pid>`).
    `group`: SIGTERM to the master and its workers at once (Heroku sends it to every process)."""
    gateway, gateway_url = await start_gateway(aiohttp_server)
    gateway[FAULTS_KEY].add(Fault(endpoint="/ussd/send", mode="delay", seconds=SEND_DELAY))
    server = Serve(tmp_path, "serve", REDIS_URL=redis_url, BDAPPS_BASE_URL=gateway_url, WEB_CONCURRENCY=workers)
    server.start()
    tag = f"sd{uuid.uuid4().hex[:8]}"
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_healthy(http, workers=int(workers))

            async def callback(i: int) -> int:
                async with http.post(f"{server.url}/bdapps/ussd",
                                     json=mo(f"{tag}-{i}", 0, "*213#", f"tel:88019{i:08d}")) as resp:
                    return resp.status

            assert await asyncio.gather(*(callback(i) for i in range(HOPS))) == [200] * HOPS
            # every hop is now computing or waiting on the slow gateway: stop the server
            signalled = time.monotonic()
            if target == "master":
                os.kill(server.pid, signal.SIGTERM)
            else:
                os.killpg(server.pid, signal.SIGTERM)

            await asyncio.sleep(0.3)
            assert server.proc.poll() is None  # still draining (the screens take SEND_DELAY)...
            with pytest.raises(aiohttp.ClientConnectorError):  # connection refused
                async with aiohttp.ClientSession() as fresh:  # ...but a new callback is refused
                    async with fresh.post(f"{server.url}/bdapps/ussd", json=mo(f"{tag}-late", 0, "*213#", "tel:1"),
                                          timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        pytest.fail(f"a callback after SIGTERM was answered {resp.status}")

            code = await server.wait_exit(EXIT_BOUND)
            took = time.monotonic() - signalled
        assert code == 0, server.logs()
        assert SEND_DELAY * 0.8 <= took < EXIT_BOUND, took  # it waited for the slow sends
        # every acknowledged hop's screen reached the gateway and was answered before the exit
        for i in range(HOPS):
            screen = await next_screen(gateway, f"{tag}-{i}", timeout=1)
            assert screen["message"].startswith("Welcome to Alap") and screen["ussdOperation"] == "mt-cont"
        hops = server.events("ussd_hop")
        assert sorted(e["session_id"] for e in hops) == sorted(f"{tag}-{i}" for i in range(HOPS))
        assert all(e["sent"] for e in hops), hops
        sent = [c["json"]["sessionId"] for c in gateway[FAULTS_KEY].calls_to("/ussd/send")]
        assert sorted(sent) == sorted(f"{tag}-{i}" for i in range(HOPS))  # once each; nothing for the late one
        assert "Traceback" not in server.logs()
    finally:
        await server.close()
        await delete_keys(redis_url, tag)


async def test_sigterm_during_a_burst_every_acked_hop_gets_its_screen(aiohttp_server, redis_url, tmp_path):
    """Callbacks keep arriving while the signal lands: those acknowledged with 200 (claimed,
    maybe still in their handler when the drain began) all get their screen; the others fail
    at the connection (BDApps retries them elsewhere) and change nothing."""
    gateway, gateway_url = await start_gateway(aiohttp_server)
    gateway[FAULTS_KEY].add(Fault(endpoint="/ussd/send", mode="delay", seconds=0.5))
    server = Serve(tmp_path, "serve", REDIS_URL=redis_url, BDAPPS_BASE_URL=gateway_url, WEB_CONCURRENCY="2")
    server.start()
    tag = f"sb{uuid.uuid4().hex[:8]}"
    acked: list[str] = []
    failed: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_healthy(http, workers=2)

            async def callback(i: int) -> None:
                await asyncio.sleep(i * 0.005)  # 80 callbacks over 0.4 s
                session_id = f"{tag}-{i}"
                try:
                    async with aiohttp.ClientSession() as fresh:
                        async with fresh.post(f"{server.url}/bdapps/ussd", json=mo(session_id, 0, "*213#", "tel:1"),
                                              timeout=aiohttp.ClientTimeout(total=5)) as resp:
                            (acked if resp.status == 200 else failed).append(session_id)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    failed.append(session_id)

            async def terminate() -> None:
                await asyncio.sleep(0.2)
                os.kill(server.pid, signal.SIGTERM)

            await asyncio.gather(terminate(), *(callback(i) for i in range(80)))
            assert await server.wait_exit(EXIT_BOUND) == 0, server.logs()
        assert acked and failed, (acked, failed)  # the signal did land mid-burst
        for session_id in acked:
            screen = await next_screen(gateway, session_id, timeout=1)
            assert screen["message"].startswith("Welcome to Alap")
        sent = {e["session_id"] for e in server.events("ussd_hop") if e["sent"]}
        assert set(acked) <= sent
        assert "Traceback" not in server.logs()
    finally:
        await server.close()
        await delete_keys(redis_url, tag)
