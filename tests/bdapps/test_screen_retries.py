"""A screen the gateway refuses with a retryable code is sent again within the USSD budget
(server/integrations/bdapps.py): a run of refusals does not cost the subscriber a screen, and
a send that may have been delivered (a timeout) is never sent twice. Over real HTTP against the
sandbox gateway's fault injection, with the session in a real Redis."""
from __future__ import annotations

import aiohttp

from server.sandbox.faults import Fault

from ..conftest import APP_ID, redis_test_store, start_stack

MO = {"applicationId": APP_ID, "sessionId": "retry-1", "requestId": "retry-1-r0", "ussdOperation": "mo-init",
      "message": "*213#", "sourceAddress": "tel:8801812345678", "encoding": "440", "version": "1.0"}
REFUSED = {"statusCode": "E1603", "statusDetail": "Temporary System Error"}


async def test_a_screen_refused_four_times_in_a_row_still_arrives(aiohttp_server, redis_url):
    async with redis_test_store(redis_url) as store:
        stack = await start_stack(aiohttp_server, store=store)
        try:
            stack.faults.add(Fault(endpoint="/ussd/send", mode="body", json=REFUSED, times=4))
            async with stack.http.post(f"{stack.app_url}/bdapps/ussd", json=MO) as resp:
                assert resp.status == 200
            await stack.settle()
            sends = stack.faults.calls_to("/ussd/send")
            assert len(sends) == 5  # four refusals, then the screen
            assert {s["json"]["message"] for s in sends} == {sends[0]["json"]["message"]}  # the same screen
            assert stack.service.stats["sent"] == 1 and stack.service.stats["send_failed"] == 0
            assert await store.get_session("retry-1") is not None
        finally:
            await stack.http.close()


async def test_a_screen_whose_send_timed_out_is_not_sent_again(aiohttp_server, redis_url):
    async with redis_test_store(redis_url) as store:
        stack = await start_stack(aiohttp_server, store=store)
        stack.service.gateway.timeout = aiohttp.ClientTimeout(total=0.3)
        try:
            stack.faults.add(Fault(endpoint="/ussd/send", mode="delay", seconds=1.0, times=1))
            async with stack.http.post(f"{stack.app_url}/bdapps/ussd", json={**MO, "sessionId": "retry-2",
                                                                              "requestId": "retry-2-r0"}) as resp:
                assert resp.status == 200
            await stack.settle()
            assert len(stack.faults.calls_to("/ussd/send")) == 1  # may have been delivered: never again
            assert stack.service.stats["send_failed"] == 1
        finally:
            await stack.http.close()
