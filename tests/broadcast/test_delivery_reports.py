"""Status totals after delivery reports arrive: a broadcast sent through the sandbox gateway,
then BDApps' reports posted to the running app's `/bdapps/sms/report` over HTTP; the totals
move from pending to delivered / failed, once per recipient whatever arrives twice or late."""
from __future__ import annotations

import time

import aiohttp

from server.broadcast.loading import create_broadcast
from server.broadcast.store import Spec
from server.sandbox.bdapps import sent_sms

from ..conftest import APP_ID, start_stack
from .helpers import context, write_numbers


async def report(stack, message_id: str, address: str, status: str) -> dict:
    body = {"applicationId": APP_ID, "destinationAddress": address, "timeStamp": "2612021200",
            "requestId": message_id, "deliveryStatus": status}
    async with stack.http.post(f"{stack.app_url}/bdapps/sms/report", json=body) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_totals_follow_the_delivery_reports(aiohttp_server, redis_store, tmp_path):
    stack = await start_stack(aiohttp_server, store=redis_store, sms_routes="bdapps", sms_rate=0.0)
    write_numbers(tmp_path / "to.txt", 40)
    try:
        async with aiohttp.ClientSession() as http:
            ctx = context(redis_store, http, stack.gateway_url)
            spec = Spec(name="dr", kind="sms", route="bdapps", text="Your parcel arrives today",
                        source=str(tmp_path / "to.txt"), fingerprint="dr", created_at=time.time())
            await create_broadcast(ctx.bstore, spec)
            result = await ctx.runner(spec, batch=25).run("dr")
            t = result.broadcast.totals
            assert (t.sent, t.pending, t.delivered, t.failed) == (40, 40, 0, 0)
            sms = sent_sms(stack.gateway)
            for item in sms[:30]:
                assert (await report(stack, item["messageId"], item["to"], "DELIVERED"))["statusCode"] == "S1000"
            for item in sms[30:35]:
                await report(stack, item["messageId"], item["to"], "UNDELIVERABLE")
            await report(stack, sms[0]["messageId"], sms[0]["to"], "DELIVERED")  # delivered twice
            await report(stack, sms[1]["messageId"], sms[1]["to"], "EXPIRED")  # a late contradiction
            await report(stack, sms[36]["messageId"], sms[36]["to"], "ACCEPTED")  # not final
            await report(stack, "no-such-id", "tel:8801800000000", "DELIVERED")  # acknowledged, ignored
            t = (await ctx.bstore.get("dr")).totals
            await ctx.aclose()
        assert (t.sent, t.delivered, t.failed, t.pending, t.unknown, t.queued) == (40, 30, 5, 5, 0, 0)
    finally:
        await stack.http.close()
