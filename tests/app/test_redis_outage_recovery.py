"""Redis goes away and comes back: callbacks get a temporary error (not a hang, not a 500),
/healthz says 503, and the server recovers by itself."""
from __future__ import annotations

import asyncio
import os
import signal
import time

from structlog.testing import capture_logs

from server.app import run_jobs_once
from server.store.redis_backend import RedisStore, connect

from tests.conftest import APP_ID, RedisServer, start_stack


def mo(request_id: str):
    return {"applicationId": APP_ID, "sessionId": "outage", "requestId": request_id, "ussdOperation": "mo-init",
            "message": "*213#", "sourceAddress": "tel:8801812345678", "encoding": "440", "version": "1.0"}


async def test_redis_outage_and_recovery(aiohttp_server):
    redis = RedisServer().start()
    store = RedisStore(connect(redis.url), prefix="alap-outage:")
    stack = await start_stack(aiohttp_server, store=store)
    try:
        async with stack.http.get(f"{stack.app_url}/healthz") as resp:
            assert resp.status == 200
        redis.stop()
        started = time.perf_counter()
        status, answer = await stack.post_mo(mo("r1"))
        assert time.perf_counter() - started < 2.5
        assert status == 503 and answer["statusCode"] == "E1603"
        async with stack.http.get(f"{stack.app_url}/healthz") as resp:
            assert resp.status == 503 and (await resp.json())["status"] == "store unavailable"
        await asyncio.sleep(0.1)
        assert stack.sent() == []

        redis.start()  # same port: the pool reconnects on its own
        for _ in range(50):
            async with stack.http.get(f"{stack.app_url}/healthz") as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.1)
        assert resp.status == 200
        status, answer = await stack.post_mo(mo("r1"))  # the refused delivery, retried by the gateway
        assert status == 200 and answer["statusCode"] == "S1000"
        for _ in range(100):
            if stack.sent():
                break
            await asyncio.sleep(0.02)
        assert stack.sent()[0]["message"].startswith("আলাপে স্বাগতম")
    finally:
        await stack.http.close()
        redis.cleanup()


async def test_background_jobs_while_redis_is_away_log_one_line_each_and_no_traceback(aiohttp_server):
    """The jobs every worker runs (parked SMS, session sweep, flow versions) meet Redis away during
    a restart: each says so in one warning line, none writes a traceback, and none raises."""
    redis = RedisServer().start()
    store = RedisStore(connect(redis.url), prefix="alap-outage-jobs:")
    stack = await start_stack(aiohttp_server, store=store)
    try:
        redis.stop()
        with capture_logs() as logs:
            await run_jobs_once(stack.app)
        events = {line["event"]: line for line in logs if line["log_level"] in ("warning", "error")}
        assert set(events) == {"messaging_job_store_unavailable", "session_sweep_store_unavailable",
                               "flow_versions_keep_store_unavailable"}
        assert all(line["log_level"] == "warning" and "exc_info" not in line for line in events.values())
    finally:
        await stack.http.close()
        redis.cleanup()


async def test_a_hung_redis_is_a_fast_503_and_the_server_recovers_when_it_answers_again(aiohttp_server):
    """Redis stops answering without closing anything (SIGSTOP: a hung server, a network that
    drops packets). Every callback is refused within the store's 1 s timeout, not held; once
    Redis answers again the next delivery is served, on a connection no late reply can confuse
    (server/store/redis_line.py)."""
    redis = RedisServer().start()
    store = RedisStore(connect(redis.url), prefix="alap-hung:")
    stack = await start_stack(aiohttp_server, store=store)
    try:
        status, _ = await stack.post_mo(mo("warm"))  # opens the store's connections
        assert status == 200
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            started = time.perf_counter()
            answers = await asyncio.gather(*(stack.post_mo({**mo(f"h{i}"), "sessionId": f"hung-{i}"})
                                             for i in range(5)))
            waited = time.perf_counter() - started
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert [(status, answer["statusCode"]) for status, answer in answers] == [(503, "E1603")] * 5
        assert waited < 2.5, waited
        # The refused deliveries, retried by the gateway once Redis answers: each gets its screen.
        for i in range(5):
            status, answer = await stack.post_mo({**mo(f"h{i}"), "sessionId": f"hung-{i}"})
            assert status == 200 and answer["statusCode"] == "S1000", (i, status, answer)
        for _ in range(100):
            if len({m["sessionId"] for m in stack.sent()} & {f"hung-{i}" for i in range(5)}) == 5:
                break
            await asyncio.sleep(0.02)
        screens = [m for m in stack.sent() if m["sessionId"].startswith("hung-")]
        assert sorted(m["sessionId"] for m in screens) == [f"hung-{i}" for i in range(5)]
        assert all(m["message"].startswith("আলাপে স্বাগতম") for m in screens)
    finally:
        await stack.http.close()
        await store.close()
        redis.cleanup()
