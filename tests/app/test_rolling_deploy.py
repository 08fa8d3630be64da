"""A rolling deploy with two real `alap serve` processes on one real Redis: the old release
(the shipped flows) and the new one (the demo's first two options swapped) serve alternate hops
of the same sessions, each session on the version it started on; `alap flows` then lists both
versions of the demo with their session counts."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid

import aiohttp
import redis.asyncio as aioredis

from ..bdapps.test_deploy_pinning import flows_v1, flows_v2
from .test_scale_out import ALAP, Serve, clean_env, delete_keys, mo, next_screen, start_gateway

FINAL = "Tk 1,250.00 shared by 4: Tk 312.50 each."


async def test_two_releases_serve_alternate_hops_of_one_session_consistently(aiohttp_server, redis_url, tmp_path):
    gateway, gateway_url = await start_gateway(aiohttp_server)
    old_flows, new_flows = flows_v1(tmp_path), flows_v2(tmp_path)
    old = Serve(tmp_path, "old", REDIS_URL=redis_url, BDAPPS_BASE_URL=gateway_url, ALAP_FLOWS_DIR=str(old_flows))
    new = Serve(tmp_path, "new", REDIS_URL=redis_url, BDAPPS_BASE_URL=gateway_url, ALAP_FLOWS_DIR=str(new_flows))
    tag = f"rd{uuid.uuid4().hex[:8]}"
    try:
        old.start()
        new.start()
        async with aiohttp.ClientSession() as http:
            await old.wait_healthy(http)
            await new.wait_healthy(http)

            async def session(i: int, first: Serve, second: Serve, split_bill: str) -> list[str]:
                """Hop k goes to `first` when k is even, to `second` when odd."""
                session_id, address = f"{tag}-{i}", f"tel:88019{i:08d}"
                screens = []
                for hop, message in enumerate(["*213#", split_bill, "1250", "4"]):
                    server = first if hop % 2 == 0 else second
                    async with http.post(f"{server.url}/bdapps/ussd", json=mo(session_id, hop, message, address)) as r:
                        assert r.status == 200 and (await r.json())["statusCode"] == "S1000"
                    screens.append((await next_screen(gateway, session_id, timeout=20))["message"])
                return screens

            # sessions started on the old release choose "2" to split a bill, on the new one "1"
            results = await asyncio.gather(*(session(i, old, new, "2") for i in range(5)),
                                           *(session(i, new, old, "1") for i in range(5, 10)))
            for i, screens in enumerate(results):
                option1 = "Find a number's operator" if i < 5 else "Split a bill"
                assert screens[0].startswith(f"Welcome to Alap\n1. {option1}"), (i, screens)
                assert screens[1].startswith("Enter the bill amount"), (i, screens)
                assert screens[2].startswith("How many people"), (i, screens)
                assert screens[3] == FINAL, (i, screens)

            # sessions left open on each version, for `alap flows`
            for i, (first, second, choice) in enumerate([(old, new, "2")] * 3 + [(new, old, "1")] * 2, start=20):
                session_id, address = f"{tag}-{i}", f"tel:88019{i:08d}"
                for hop, message in enumerate(["*213#", choice]):
                    server = first if hop == 0 else second
                    async with http.post(f"{server.url}/bdapps/ussd", json=mo(session_id, hop, message, address)) as r:
                        assert r.status == 200
                    await next_screen(gateway, session_id, timeout=20)
        for server in (old, new):
            server.proc.send_signal(signal.SIGTERM)
        for server in (old, new):
            assert await server.wait_exit(15) == 0, server.logs()
        for server in (old, new):
            assert "Traceback" not in server.logs()
        # the new release fetched the old version once per process, and the old release the new one
        assert new.events("flow_version_loaded") and old.events("flow_version_loaded")

        listing = subprocess.run([*ALAP, "flows", "--json"], capture_output=True, text=True, timeout=60,
                                 env=clean_env(REDIS_URL=redis_url, ALAP_FLOWS_DIR=str(new_flows)))
        assert listing.returncode == 0, listing.stderr
        demo = {row["version"]: row for row in json.loads(listing.stdout) if row["flow"] == "demo"}
        current = [row for row in demo.values() if row["current"]]
        older = [row for row in demo.values() if not row["current"] and row["sessions"]]
        assert len(current) == 1 and current[0]["sessions"] >= 2
        assert len(older) == 1 and older[0]["sessions"] >= 3 and older[0]["expires_in"] > 180 + 120
        table = subprocess.run([*ALAP, "flows"], capture_output=True, text=True, timeout=60,
                               env=clean_env(REDIS_URL=redis_url, ALAP_FLOWS_DIR=str(new_flows)))
        assert f"demo             {current[0]['version']}" in table.stdout and "current" in table.stdout
        assert older[0]["version"] in table.stdout and "older, kept" in table.stdout
    finally:
        for server in (old, new):
            await server.close()
        await delete_keys(redis_url, tag)
        client = aioredis.from_url(redis_url)
        try:
            keys = [k async for k in client.scan_iter(match="alap:fv:*")]
            keys += [k async for k in client.scan_iter(match="alap:r:{tel:88019*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
