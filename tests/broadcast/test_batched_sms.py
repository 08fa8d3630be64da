"""SMS broadcasts through the sandbox BDApps gateway, in process, on both store backends:
many recipients per `/sms/send`, each address's answer read apart, opted-out subscribers
skipped and counted."""
from __future__ import annotations

import time

import aiohttp

from server.broadcast.loading import create_broadcast
from server.broadcast.store import DONE, Spec
from server.sandbox.bdapps import sms_error
from server.store.base import Profile

from .helpers import context, fault, received, sms_requests, start_gateway, write_numbers


def spec(name: str, source: str, text: str = "Your bill is due", **kw) -> Spec:
    return Spec(name=name, kind="sms", route="bdapps", text=text, source=source, fingerprint=name,
                created_at=time.time(), **kw)


async def test_recipients_go_many_per_request_and_each_exactly_once(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 250)
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url)
        await create_broadcast(ctx.bstore, spec("bill", str(tmp_path / "to.txt")))
        result = await ctx.runner((await ctx.bstore.get("bill")).spec, batch=100).run("bill")
        await ctx.aclose()
    assert result.state == DONE
    assert received(gateway) == {a: 1 for a in addresses}
    batches = [len(r["destinationAddresses"]) for r in sms_requests(gateway)]
    assert batches == [100, 100, 50]
    totals = result.broadcast.totals
    assert (totals.total, totals.sent, totals.pending, totals.queued, totals.unknown) == (250, 250, 250, 0, 0)


async def test_opted_out_subscribers_are_skipped_and_counted(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 30)
    for address in addresses[::10]:  # texted STOP (server/bdapps/profiles.py keys profiles by address)
        await store.set_profile(address, Profile(opted_out=True))
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url)
        await create_broadcast(ctx.bstore, spec("offer", str(tmp_path / "to.txt")))
        result = await ctx.runner((await ctx.bstore.get("offer")).spec, batch=8).run("offer")
        await ctx.aclose()
    got = received(gateway)
    assert set(got) == set(addresses) - set(addresses[::10]) and set(got.values()) == {1}
    assert (result.broadcast.totals.opted_out, result.broadcast.totals.sent) == (3, 27)


async def test_a_refused_address_inside_an_accepted_request_fails_alone(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 3)
    answer = {"statusCode": "S1000", "requestId": "r-1", "statusDetail": "ok", "version": "1.0",
              "destinationResponses": [
                  # the gateway's spellings of the addresses vary (seed: "tel: 880...", "tel: +880...", "880...")
                  {"address": "tel: +" + addresses[2][4:], "statusCode": "S1000", "messageId": "m-3"},
                  {"address": addresses[0][4:], "statusCode": "S1000", "messageId": "m-1"},
                  {"address": "tel : " + addresses[1][4:], "statusCode": "E1317", "statusDetail": "invalid"}]}
    fault(gateway, mode="body", json=answer, times=1)
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url)
        await create_broadcast(ctx.bstore, spec("mixed", str(tmp_path / "to.txt")))
        result = await ctx.runner((await ctx.bstore.get("mixed")).spec).run("mixed")
        await ctx.aclose()
    t = result.broadcast.totals
    assert (t.sent, t.failed, t.unknown) == (2, 1, 0)
    assert await ctx.bstore.statuses("mixed", 0, 3) == "SFS"
    assert len(sms_requests(gateway)) == 1  # a definite refusal is not sent again


async def test_e1318_slows_the_broadcast_down_and_resends_the_same_recipients(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 20)
    fault(gateway, mode="body", json=sms_error("E1318"), times=2)
    hold = 0.3  # ALAP_BROADCAST_E1318_HOLD, 1 s by default
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url, sms_rate=50.0, broadcast_e1318_hold=hold)
        await create_broadcast(ctx.bstore, spec("slow", str(tmp_path / "to.txt")))
        runner = ctx.runner((await ctx.bstore.get("slow")).spec, batch=10)
        started = time.monotonic()
        result = await runner.run("slow")
        elapsed = time.monotonic() - started
        await ctx.aclose()
    assert received(gateway) == {a: 1 for a in addresses}
    assert result.broadcast.slowed == 2
    # Two holds (the first, then twice as long) before the first accepted request; the rate was
    # halved twice and is still climbing back (server/messaging/throttle.py).
    assert elapsed >= 3 * hold - 0.1
    shared = getattr(runner.bucket, "shared_rate", None)  # with Redis the bucket is every process's
    assert (await shared() if shared else runner.bucket.rate) < 50.0
    assert len(sms_requests(gateway)) == 4


async def test_e1319_parks_the_broadcast_until_tomorrow_and_it_continues_then(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 20)
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url)
        await create_broadcast(ctx.bstore, spec("daily", str(tmp_path / "to.txt")))
        daily = (await ctx.bstore.get("daily")).spec
        injected = []

        def after_first_batch(b):  # the gateway's daily quota runs out after one request
            if not injected:
                injected.append(fault(gateway, mode="body", json=sms_error("E1319"), times=1))

        first = ctx.runner(daily, batch=10, progress=after_first_batch)
        parked = await first.run("daily")
        assert parked.state == "parked" and "E1319" in parked.detail
        assert parked.not_before > time.time() and parked.not_before - time.time() <= 86400 + 120
        assert len(received(gateway)) == 10 and parked.broadcast.totals.queued == 10
        assert await ctx.bstore.due(time.time()) == []
        tomorrow = parked.not_before + 1
        assert await ctx.bstore.due(tomorrow) == ["daily"]
        done = await ctx.runner(daily, batch=10, clock=lambda: tomorrow).run("daily")
        await ctx.aclose()
    assert done.state == "done"
    assert received(gateway) == {a: 1 for a in addresses}
