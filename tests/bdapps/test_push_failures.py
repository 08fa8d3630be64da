"""`/push/ussd` when things fail: a store outage is a 503 JSON answer, and a refused push whose
fallback SMS fails too is logged with both codes, never raised out of the background task."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest
from structlog.testing import capture_logs

from server.bdapps.push import PUSH_SERVICE
from server.sandbox.bdapps import sms_error
from server.sandbox.faults import Fault
from server.store.redis_backend import RedisStore, connect

from ..conftest import RedisServer, Stack, start_stack

TOKEN = "push-failures-token"
ADDRESS = "tel:8801812345678"
NOTICE = {"address": ADDRESS, "flow": "parcel_notice", "vars": {"parcel_id": "ECR1", "agent_phone": "017"}}


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    """A redis-server of this test's own, to stop while the server runs."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
async def push_stack(aiohttp_server, own_redis) -> AsyncIterator[Stack]:
    store = RedisStore(connect(own_redis.url), "alap-push-test:")  # the server is thrown away after
    stack = await start_stack(aiohttp_server, store=store, admin_token=TOKEN, sms_routes="bdapps")
    yield stack
    await stack.http.close()


async def push(stack: Stack, body: dict[str, Any]) -> tuple[int, Any]:
    async with stack.http.post(f"{stack.app_url}/push/ussd", json=body,
                               headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_store_outage_is_a_503_json_answer(push_stack, own_redis):
    own_redis.stop()
    status, answer = await push(push_stack, NOTICE)
    assert status == 503
    assert answer["statusCode"] == "E1603"
    assert push_stack.sent() == []


async def finished(stack: Stack) -> list[asyncio.Task]:
    """The push's background tasks, once done (the 202 comes before the send)."""
    tasks = list(stack.app[PUSH_SERVICE].tasks)
    assert tasks
    done, pending = await asyncio.wait(tasks, timeout=30)
    assert not pending
    return list(done)


async def test_refused_push_and_failed_sms_are_both_logged_with_their_codes(push_stack):
    push_stack.fail_sends(mode="body", json={"statusCode": "E1309", "statusDetail": "mt-init not allowed"})
    push_stack.faults.add(Fault(endpoint="/sms/send", mode="body", json=sms_error("E1317")))
    with capture_logs() as logs:
        status, _ = await push(push_stack, NOTICE)
        assert status == 202
        tasks = await finished(push_stack)
    assert all(t.exception() is None for t in tasks)
    refused = [e for e in logs if e["event"] == "push_refused"]
    failed = [e for e in logs if e["event"] == "push_sms_failed"]
    assert [e["status_code"] for e in refused] == ["E1309"]
    assert [(e["ussd_status_code"], e["sms_code"], e["log_level"]) for e in failed] == [("E1309", "E1317", "error")]


async def test_store_lost_during_a_refused_push_raises_nothing_out_of_the_task(push_stack, own_redis):
    # The gateway takes a second to refuse; meanwhile Redis goes away, so closing the session and
    # the SMS fallback's opt-out check both fail.
    push_stack.fail_sends(mode="body", seconds=1.0, json={"statusCode": "E1309", "statusDetail": "not allowed"})
    with capture_logs() as logs:
        status, _ = await push(push_stack, NOTICE)
        assert status == 202
        own_redis.stop()
        tasks = await finished(push_stack)
    assert all(t.exception() is None for t in tasks)
    failed = [e for e in logs if e["event"] == "push_sms_failed"]
    assert [(e["ussd_status_code"], e["sms_code"]) for e in failed] == [("E1309", "store_unavailable")]
