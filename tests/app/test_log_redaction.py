"""Secrets never reach a log line of a real `alap serve`, and a REDIS_URL password is never
echoed in an error (server/logs.py, server/config.py)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time

import aiohttp
import pytest
import redis as sync_redis

from server.sandbox.bdapps import CALLBACK, create_bdapps_fake
from server.sandbox.faults import Fault, FAULTS_KEY

from ..conftest import free_port

ALAP = [sys.executable, "-m", "server"]
APP_ID = "APP_REDACT"
BDAPPS_PASSWORD = "bd-Redact-Pa55-91"
REDIS_PASSWORD = "redis-Pa55-for-logs-77"
ADMIN_TOKEN = "admin-Token-redact-55"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT", "WEB_CONCURRENCY", "PROMETHEUS_"))}
    env.update(extra)
    return env


@pytest.fixture
def redis_with_password():
    port = free_port()
    folder = tempfile.mkdtemp(prefix="alap-redis-pw-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", folder, "--requirepass", REDIS_PASSWORD],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            if sync_redis.Redis(port=port, password=REDIS_PASSWORD, socket_timeout=0.2).ping():
                break
        except sync_redis.exceptions.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


async def test_serve_redacts_secrets_from_an_upstream_error(aiohttp_server, redis_with_password):
    gateway = create_bdapps_fake("http://127.0.0.1:9/unset", APP_ID, BDAPPS_PASSWORD)
    gateway_url = str((await aiohttp_server(gateway)).make_url("")).rstrip("/")
    port = free_port()
    gateway[CALLBACK].url = f"http://127.0.0.1:{port}/bdapps/ussd"
    # A gateway that quotes the request back in its error text (it happens): every secret Alap
    # holds is in the answer that the client logs.
    detail = f"Authentication failed for password {BDAPPS_PASSWORD} via {redis_with_password} token {ADMIN_TOKEN}"
    gateway[FAULTS_KEY].add(Fault(endpoint="/ussd/send", mode="body", json={"statusCode": "E1313", "statusDetail": detail}))
    env = clean_env(PORT=str(port), BDAPPS_APP_ID=APP_ID, BDAPPS_PASSWORD=BDAPPS_PASSWORD, BDAPPS_BASE_URL=gateway_url,
                    REDIS_URL=redis_with_password, ALAP_ADMIN_TOKEN=ADMIN_TOKEN, ALAP_REDIS_PREFIX="alap-redact:")
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([*ALAP, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(600):
                    assert proc.poll() is None
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                body = {"applicationId": APP_ID, "sessionId": "redact-1", "requestId": "redact-q1",
                        "ussdOperation": "mo-init", "message": "*213#", "sourceAddress": "tel:8801812345678",
                        "encoding": "440", "version": "1.0"}
                async with http.post(f"http://127.0.0.1:{port}/bdapps/ussd", json=body) as resp:
                    assert resp.status == 200
                for _ in range(300):  # until the failure is logged
                    out.seek(0)
                    if "bdapps_send_failed" in out.read():
                        break
                    await asyncio.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(30)
        out.seek(0)
        logged = out.read()
    assert "bdapps_send_failed" in logged and "Authentication failed for password ***" in logged
    for secret in (BDAPPS_PASSWORD, REDIS_PASSWORD, ADMIN_TOKEN):
        assert secret not in logged


@pytest.mark.parametrize("url", [
    f"http://:{REDIS_PASSWORD}@127.0.0.1:6379/0",  # not a Redis scheme
    f"redis://:{REDIS_PASSWORD}@127.0.0.1:notaport/0",  # a port the client cannot read
    f"redis://alap:{REDIS_PASSWORD}@127.0.0.1:6379/0?socket_timeout=soon",  # an option it cannot read
])
def test_a_bad_redis_url_is_one_line_without_its_password(url):
    result = subprocess.run([*ALAP, "serve"], capture_output=True, text=True, timeout=60,
                            env=clean_env(BDAPPS_APP_ID=APP_ID, BDAPPS_PASSWORD="pw", PORT=str(free_port()),
                                          REDIS_URL=url))
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("alap: REDIS_URL: ") and ":***@127.0.0.1" in line
    assert REDIS_PASSWORD not in result.stderr


def test_lines_from_other_libraries_are_redacted_too():
    """aiohttp, asyncio and gunicorn log through the standard library, not structlog."""
    code = ("import logging; from server.logs import setup_logging; "
            f"setup_logging('info', json=True, secrets=[{BDAPPS_PASSWORD!r}]); "
            "log = logging.getLogger('aiohttp.server')\n"
            "try:\n"
            f"    raise RuntimeError('upstream said: {BDAPPS_PASSWORD}')\n"
            "except RuntimeError:\n"
            f"    log.exception('Error handling request %s', {BDAPPS_PASSWORD!r})\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Error handling request ***" in result.stdout and "upstream said: ***" in result.stdout
    assert BDAPPS_PASSWORD not in result.stdout + result.stderr
