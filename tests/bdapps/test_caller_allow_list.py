"""BDAPPS_ALLOWED_IPS and ALAP_TRUSTED_PROXIES: who may call /bdapps/* (server/bdapps/callers.py).

The app listens on 127.0.0.1, so an allow-list without 127.0.0.0/8 makes the test client a
stranger; X-Forwarded-For is believed only from a trusted proxy (here the test client itself).
"""
from __future__ import annotations

import subprocess
import sys
from typing import Any, AsyncIterator

import pytest

from server.integrations.base import default_ssl_context  # shared: httpx's default loads the CA bundle per call
from server.store.redis_backend import RedisStore

from ..conftest import APP_ID, Stack, free_port, redis_test_store, start_stack

ALAP = [sys.executable, "-m", "server"]

USSD = {"applicationId": APP_ID, "sessionId": "caller-1", "requestId": "caller-req-1", "ussdOperation": "mo-init",
        "message": "*213#", "sourceAddress": "tel:8801812345678", "encoding": "440", "version": "1.0"}
SMS = {"applicationId": APP_ID, "sourceAddress": "tel:8801812345678", "message": "HELP", "requestId": "caller-sms-1",
       "encoding": "0", "version": "1.0"}
REPORT = {"destinationAddress": "tel:8801812345678", "requestId": "101", "deliveryStatus": "DELIVERED",
          "timeStamp": "20250101120000"}


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    async with redis_test_store(redis_url) as store:
        yield store


async def post(stack: Stack, path: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    async with stack.http.post(f"{stack.app_url}{path}", json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def keys(store: RedisStore) -> list[bytes]:
    """Every key but the flow versions the server published when it started."""
    return [k async for k in store.redis.scan_iter(match=f"{store.prefix}*")
            if not k.startswith(f"{store.prefix}fv:".encode())]


async def test_a_caller_outside_the_allow_list_is_refused_and_nothing_happens(aiohttp_server, redis_store):
    stack = await start_stack(aiohttp_server, store=redis_store, bdapps_allowed_ips="10.0.0.0/8,192.0.2.7")
    try:
        for path, body in (("/bdapps/ussd", USSD), ("/bdapps/sms", SMS), ("/bdapps/sms/report", REPORT)):
            status, answer = await post(stack, path, body)
            assert status == 403, path
            assert answer["statusCode"] == "E1313" and "not allowed" in answer["statusDetail"]
        await stack.settle()
        assert await keys(redis_store) == []  # no dedupe record, no session, no message
        assert stack.faults.calls == []  # no screen, no SMS
        async with stack.http.get(f"{stack.app_url}/healthz") as resp:  # other routes are not guarded
            assert resp.status == 200
    finally:
        await stack.http.close()


async def test_a_caller_inside_the_allow_list_is_served(aiohttp_server, redis_store):
    stack = await start_stack(aiohttp_server, store=redis_store, bdapps_allowed_ips="10.0.0.0/8, 127.0.0.0/8")
    try:
        screen = await stack.dial("*213#")  # through the fake gateway, from 127.0.0.1
        assert screen["ussdOperation"] == "mt-cont"
        status, answer = await post(stack, "/bdapps/sms/report", REPORT)
        assert (status, answer["statusCode"]) == (200, "S1000")
    finally:
        await stack.http.close()


@pytest.mark.parametrize("trusted, forwarded, expected", [
    ("127.0.0.1/32", "10.1.2.3", 200),  # the proxy says BDApps called: believed
    ("127.0.0.1/32", "10.1.2.3, 127.0.0.1", 200),  # a chain of trusted proxies: skipped from the right
    ("127.0.0.1/32", "203.0.113.9", 403),  # the proxy says a stranger called
    ("127.0.0.1/32", "10.1.2.3, 203.0.113.9", 403),  # the stranger forged the left part: rightmost untrusted wins
    ("127.0.0.1/32", "not-an-address", 403),
    (None, "10.1.2.3", 403),  # nobody is a trusted proxy: the header is not believed
    ("192.0.2.0/24", "10.1.2.3", 403),  # the peer (127.0.0.1) is not the trusted proxy
])
async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(aiohttp_server, redis_store, trusted, forwarded,
                                                                      expected):
    stack = await start_stack(aiohttp_server, store=redis_store, bdapps_allowed_ips="10.0.0.0/8",
                              trusted_proxies=trusted)
    try:
        body = {**USSD, "sessionId": "xff-1", "requestId": "xff-req-1"}
        status, answer = await post(stack, "/bdapps/ussd", body, **{"X-Forwarded-For": forwarded})
        assert status == expected, answer
        if expected == 200:
            await stack.settle()
            assert [s["sessionId"] for s in stack.sent()] == ["xff-1"]
        else:
            assert answer["statusCode"] == "E1313" and stack.sent() == []
    finally:
        await stack.http.close()


def serve_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT", "WEB_CONCURRENCY", "PROMETHEUS_"))}
    env.update(BDAPPS_APP_ID=APP_ID, BDAPPS_PASSWORD="pw-caller-test", PORT=str(free_port()), **extra)
    return env


@pytest.mark.parametrize("name", ["BDAPPS_ALLOWED_IPS", "ALAP_TRUSTED_PROXIES"])
def test_a_bad_cidr_is_one_line_naming_the_setting(name):
    result = subprocess.run([*ALAP, "serve"], capture_output=True, text=True, timeout=60,
                            env=serve_env(**{name: "10.0.0.0/8,10.0.0.300/8"}))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"alap: {name}: Value error, '10.0.0.300/8' is not a CIDR such as 10.0.0.0/8 or 192.0.2.7 "
        f"(got '10.0.0.0/8,10.0.0.300/8')"]


def _start_output(env: dict[str, str]) -> str:
    """`alap serve`'s output from start until it serves (then SIGTERM)."""
    import time

    import httpx

    proc = subprocess.Popen([*ALAP, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None
            try:
                health = httpx.get(f"http://127.0.0.1:{env['PORT']}/healthz", timeout=1, verify=default_ssl_context())
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    return out


def test_serve_warns_once_when_any_peer_may_call(redis_url):
    open_to_all = _start_output(serve_env(REDIS_URL=redis_url, WEB_CONCURRENCY="2"))
    warnings = [line for line in open_to_all.splitlines() if "BDAPPS_ALLOWED_IPS is not set" in line]
    assert len(warnings) == 1 and '"level":"warning"' in warnings[0], open_to_all
    restricted = _start_output(serve_env(BDAPPS_ALLOWED_IPS="10.0.0.0/8"))
    assert "BDAPPS_ALLOWED_IPS" not in restricted and "alap: serving on" in restricted
