"""USSD broadcasts: an `mt-init` per recipient through the sandbox gateway (the CSV's columns
and --var become flow variables), opted-out subscribers skipped, a refused push falls back to
SMS, and a push with no answer is UNKNOWN with no SMS after it (the screen may be on the phone)."""
from __future__ import annotations

import time

import aiohttp

from server.broadcast.loading import create_broadcast
from server.broadcast.store import Spec
from server.sandbox.bdapps import sent_sms
from server.sandbox.faults import FAULTS_KEY
from server.store.base import Profile

from .helpers import context, fault, start_gateway


async def test_ussd_broadcast_pushes_each_recipient_with_fallback_and_unknowns(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    path = tmp_path / "parcels.csv"
    path.write_text("number,parcel_id\n" + "".join(f"0181200000{i},ECR10{i}\n" for i in range(6)), encoding="utf-8")
    await store.set_profile("tel:8801812000005", Profile(opted_out=True))
    # The first push is refused (SMS fallback), the second gets no answer in time (unknown).
    fault(gateway, endpoint="/ussd/send", mode="body", json={"statusCode": "E1325", "statusDetail": "bad address"},
          times=1)
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url, bdapps_timeout=1.0)  # BDAPPS_TIMEOUT, 3 s by default
        spec = Spec(name="notice", kind="ussd", route="bdapps", flow="parcel_notice", vars={"agent_phone": "01712345678"},
                    source=str(path), fingerprint="n", created_at=time.time())
        await create_broadcast(ctx.bstore, spec)
        runner = ctx.runner(spec, batch=1)
        runner.progress = lambda b: (fault(gateway, endpoint="/ussd/send", mode="delay", seconds=2, times=1)
                                     if b.cursor == 1 else None)
        result = await runner.run("notice")
        await ctx.aclose()
    pushes = [c["json"] for c in gateway[FAULTS_KEY].calls_to("/ussd/send")]
    assert [p["destinationAddress"] for p in pushes] == [f"tel:880181200000{i}" for i in range(5)]
    assert {p["ussdOperation"] for p in pushes} == {"mt-init"}
    assert pushes[3]["message"].startswith("Your parcel ECR103 is out for delivery.")
    assert len({p["sessionId"] for p in pushes}) == 5
    # Sessions wait for the subscriber's reply like any pushed session.
    assert await store.get_session(pushes[4]["sessionId"]) is not None
    [fallback] = sent_sms(gateway)
    assert fallback["to"] == "tel:8801812000000" and fallback["message"].startswith("Your parcel ECR100")
    t = result.broadcast.totals
    assert (t.sent, t.unknown, t.opted_out, t.queued) == (4, 1, 1, 0)
