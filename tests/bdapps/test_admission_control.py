"""ALAP_MAX_HOPS_IN_FLIGHT (server/bdapps/admission.py): past the bound a USSD callback is refused
at once with 503 E1603, before the claim, and nothing of it is stored; the hops in flight are
served, and a slot freed by a finished hop takes the next callback."""
from __future__ import annotations

import asyncio
from typing import Any

from server.sandbox.faults import Fault

from ..conftest import APP_ID, redis_test_store, start_stack


def mo_init(session_id: str) -> dict[str, Any]:
    return {"applicationId": APP_ID, "sessionId": session_id, "requestId": f"{session_id}-r0",
            "ussdOperation": "mo-init", "message": "*213#", "sourceAddress": "tel:8801812345678",
            "encoding": "440", "version": "1.0"}


async def test_callbacks_past_the_bound_are_refused_before_anything_is_stored(aiohttp_server, redis_url):
    async with redis_test_store(redis_url) as store:
        stack = await start_stack(aiohttp_server, store=store, max_hops_in_flight=2)
        try:
            # The gateway takes its time with the first two screens: their hops stay in flight.
            stack.faults.add(Fault(endpoint="/ussd/send", mode="delay", seconds=1.5, times=2))
            for sid in ("adm-1", "adm-2"):
                async with stack.http.post(f"{stack.app_url}/bdapps/ussd", json=mo_init(sid)) as resp:
                    assert resp.status == 200 and (await resp.json())["statusCode"] == "S1000"
            for _ in range(50):  # both hops have reached the gateway (and wait there)
                if len(stack.faults.calls_to("/ussd/send")) == 2:
                    break
                await asyncio.sleep(0.05)
            async with stack.http.post(f"{stack.app_url}/bdapps/ussd", json=mo_init("adm-3")) as resp:
                assert resp.status == 503
                assert (await resp.json(content_type=None))["statusCode"] == "E1603"
            stored = [k.decode() async for k in store.redis.scan_iter(match=f"{store.prefix}*")]
            assert stored and not [k for k in stored if "adm-3" in k]  # no dedupe record, lock or session
            assert stack.service.gate.refused == 1

            await stack.settle()  # the two screens went out; their places are free again
            sent = [c["json"]["sessionId"] for c in stack.faults.calls_to("/ussd/send")]
            assert sorted(sent) == ["adm-1", "adm-2"]
            assert stack.service.gate.in_flight == 0
            # BDApps redelivers the refused callback: now it is served like any other.
            async with stack.http.post(f"{stack.app_url}/bdapps/ussd", json=mo_init("adm-3")) as resp:
                assert resp.status == 200
            await stack.settle()
            assert [c["json"]["sessionId"] for c in stack.faults.calls_to("/ussd/send")][-1] == "adm-3"
            assert await store.get_session("adm-3") is not None
        finally:
            await stack.http.close()


async def test_a_refused_duplicate_or_failed_claim_gives_its_place_back(aiohttp_server, redis_url):
    async with redis_test_store(redis_url) as store:
        stack = await start_stack(aiohttp_server, store=store, max_hops_in_flight=1)
        try:
            for _ in range(3):  # the first is served, then two duplicates of it: none keeps a place
                async with stack.http.post(f"{stack.app_url}/bdapps/ussd", json=mo_init("adm-dup")) as resp:
                    assert resp.status == 200
                await stack.settle()
            assert stack.service.stats["duplicate"] == 2
            assert stack.service.gate.in_flight == 0 and stack.service.gate.refused == 0
            assert len(stack.faults.calls_to("/ussd/send")) == 1
        finally:
            await stack.http.close()
