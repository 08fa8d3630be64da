"""A send whose outcome is unknown (timeout after the request was written) is recorded UNKNOWN
and not sent again, unless the operator asks (--retry-unknown); a cancelled broadcast sends
nothing more."""
from __future__ import annotations

import time

import aiohttp

from server.broadcast.loading import create_broadcast
from server.broadcast.store import Spec

from .helpers import context, fault, received, sms_requests, start_gateway, wait_for, write_numbers


def spec(name: str, source: str) -> Spec:
    return Spec(name=name, kind="sms", route="bdapps", text="Hello", source=source, fingerprint=name,
                created_at=time.time())


async def test_a_timed_out_request_is_unknown_and_only_retried_on_request(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 30)
    fault(gateway, mode="delay", seconds=2, times=1)  # longer than the client's 1 s: no answer in time
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url, bdapps_timeout=1.0)  # BDAPPS_TIMEOUT, 3 s by default
        await create_broadcast(ctx.bstore, spec("t", str(tmp_path / "to.txt")))
        first = await ctx.runner(spec("t", ""), batch=10).run("t")
        t = first.broadcast.totals
        assert (first.state, t.sent, t.unknown) == ("done", 20, 10)
        again = await ctx.runner(spec("t", ""), batch=10).run("t")  # re-running NAME sends nothing more
        assert again.state == "done" and len(sms_requests(gateway)) == 3
        assert sorted(await ctx.bstore.unknown_seqs("t")) == list(range(10))
        retried = await ctx.runner(spec("t", ""), batch=10).run("t", retry_unknown=True)
        await ctx.aclose()
    t = retried.broadcast.totals
    assert (t.sent, t.unknown) == (30, 0)
    await wait_for(lambda: sum(received(gateway).values()) >= 40, timeout=30)  # the held request lands
    got = received(gateway)
    # The gateway did take the timed-out request: the operator's retry doubled those ten.
    assert [got[a] for a in addresses] == [2] * 10 + [1] * 20


async def test_cancel_stops_the_broadcast_before_its_next_request(aiohttp_server, store, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    write_numbers(tmp_path / "to.txt", 50)
    async with aiohttp.ClientSession() as http:
        ctx = context(store, http, url)
        await create_broadcast(ctx.bstore, spec("c", str(tmp_path / "to.txt")))
        runner = ctx.runner(spec("c", ""), batch=10)
        cancelled = []

        def cancel_after_two(b):
            if b.cursor == 20 and not cancelled:
                cancelled.append(True)

        runner.progress = cancel_after_two
        original = runner.renew

        async def renew():  # the operator runs `alap broadcast cancel c` between two batches
            if cancelled:
                await ctx.bstore.cancel("c", time.time())
            return await original()

        runner.renew = renew
        result = await runner.run("c")
        assert await ctx.bstore.due(time.time() + 10**6) == []
        again = await ctx.runner(spec("c", ""), batch=10).run("c")
        await ctx.aclose()
    assert result.state == "cancelled" and again.state == "cancelled"
    assert len(received(gateway)) == 20 and result.broadcast.totals.queued == 30
