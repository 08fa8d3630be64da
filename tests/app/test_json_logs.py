"""Logs as operators see them: JSON lines from a real `alap serve`, one per hop and per
upstream call, subscriber numbers masked, secrets never present."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import aiohttp

from server.sandbox.bdapps import CALLBACK, create_bdapps_fake
from server.sandbox.faults import FAULTS_KEY
from server.sandbox.ecourier import create_ecourier_fake

from tests.conftest import free_port

SECRETS = {"BDAPPS_PASSWORD": "bd-Pa55word-xyz", "ECOURIER_API_KEY": "ec-key-123456",
           "ECOURIER_API_SECRET": "ec-secret-abcdef", "ECARE_ACCESS_PASS": "ecare-pass-987"}


async def test_hop_and_upstream_logs_are_json_masked_and_secret_free(aiohttp_server):
    app_id = "APP_LOGS"
    gateway = create_bdapps_fake("http://127.0.0.1:9/unset", app_id, SECRETS["BDAPPS_PASSWORD"])
    gateway_server = await aiohttp_server(gateway)  # serves /ussd/send and CAAS, like BDApps
    ecourier_server = await aiohttp_server(create_ecourier_fake(SECRETS["ECOURIER_API_KEY"],
                                                                SECRETS["ECOURIER_API_SECRET"], "u1"))
    port = free_port()
    gateway[CALLBACK].url = f"http://127.0.0.1:{port}/bdapps/ussd"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL"))}
    env.update(SECRETS, PORT=str(port), BDAPPS_APP_ID=app_id,
               BDAPPS_BASE_URL=str(gateway_server.make_url("")).rstrip("/"),
               ECOURIER_BASE_URL=str(ecourier_server.make_url("")).rstrip("/"), ECOURIER_USER_ID="u1")
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio_sleep(0.1)
            body = {"applicationId": app_id, "sessionId": "log-1", "requestId": "q1", "ussdOperation": "mo-init",
                    "message": "*215#", "sourceAddress": "tel:8801812345678", "encoding": "440", "version": "1.0"}
            async with http.post(f"http://127.0.0.1:{port}/bdapps/ussd", json=body) as resp:
                assert resp.status == 200
            body.update(sessionId="log-2", requestId="q2", message="*214*ECR1022001175478#")
            async with http.post(f"http://127.0.0.1:{port}/bdapps/ussd", json=body) as resp:
                assert resp.status == 200
            for _ in range(200):  # both screens sent; SIGTERM then lets the hops finish their log lines
                if len(gateway[FAULTS_KEY].calls_to("/ussd/send")) >= 2:
                    break
                await asyncio_sleep(0.05)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    hops = [e for e in events if e.get("event") == "ussd_hop"]
    calls = [e for e in events if e.get("event") == "upstream_call"]
    assert len(hops) == 2 and {h["flow"] for h in hops} == {"balance", "parcel"}
    assert all(h["session_id"] and "latency_ms" in h and h["address"] == "tel:**********678" for h in hops)
    assert {c["upstream"] for c in calls} >= {"caas", "ecourier"}
    for secret in SECRETS.values():
        assert secret not in out
    assert "8801812345678" not in out and "01812345678" not in out
    sent = [c["json"] for c in gateway[FAULTS_KEY].calls_to("/ussd/send")]
    assert len(sent) == 2 and all(s["password"] == SECRETS["BDAPPS_PASSWORD"] for s in sent)


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
