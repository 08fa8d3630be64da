"""The broadcast progress store, memory and Redis backends behind one interface: one runner
at a time, a lost lease stops a runner's writes, a crash's in-flight recipients become UNKNOWN,
delivery reports count once."""
from __future__ import annotations

import pytest

from server.broadcast.redis_store import open_broadcast_store
from server.broadcast.store import BroadcastExists, LeaseLost, Spec, Status


async def make(store, name: str = "b", total: int = 5):
    bstore = open_broadcast_store(store)
    await bstore.create(Spec(name=name, kind="sms", text="hi", fingerprint="f", created_at=1.0))
    await bstore.append(name, [f"tel:88018100000{i:02d}" for i in range(total)], [])
    await bstore.loaded(name, total, 0, "ready", None)
    return bstore


async def test_one_runner_at_a_time_and_a_lost_lease_stops_writes(store):
    bstore = await make(store)
    assert await bstore.acquire("b", "one", now=100.0, lease=10) is not None
    assert await bstore.acquire("b", "two", now=105.0, lease=10) is None  # held
    assert await bstore.acquire("b", "two", now=105.0, lease=10, steal_from="one") is not None  # holder is dead
    with pytest.raises(LeaseLost):
        await bstore.begin("b", "one", [0], now=106.0)
    with pytest.raises(LeaseLost):
        await bstore.finish("b", "one", [(0, "S")], 1, now=106.0)
    assert (await bstore.get("b")).cursor == 0
    assert await bstore.acquire("b", "three", now=200.0, lease=10) is not None  # "two"'s lease ran out


async def test_a_crash_in_flight_leaves_unknown_recipients_and_the_rest_continues(store):
    bstore = await make(store)
    await bstore.acquire("b", "one", now=1.0)
    await bstore.begin("b", "one", [0, 1, 2], now=1.0)
    await bstore.finish("b", "one", [(0, "S"), (1, "O"), (2, "S")], 3, now=1.0)
    await bstore.begin("b", "one", [3, 4], now=2.0)  # ... and the process dies here
    await bstore.acquire("b", "two", now=100.0)
    assert await bstore.recover("b", "two", now=100.0) == 2
    b = await bstore.get("b")
    assert b.inflight == [] and await bstore.statuses("b", 0, 5) == "SOSUU"
    t = b.totals
    assert (t.sent, t.opted_out, t.unknown, t.pending) == (2, 1, 2, 2)
    assert sorted(await bstore.unknown_seqs("b")) == [3, 4]


async def test_reports_count_once_and_a_final_state_stays(store):
    bstore = await make(store)
    await bstore.acquire("b", "one", now=1.0)
    await bstore.begin("b", "one", [0, 1], now=1.0)
    await bstore.index_messages("b", [("bdapps", "m0", 0), ("bdapps", "m1", 1)])
    await bstore.finish("b", "one", [(0, "S"), (1, "S")], 2, now=1.0)
    assert await bstore.report("bdapps", "m0", Status.DELIVERED)
    assert await bstore.report("bdapps", "m0", Status.DELIVERED)  # twice
    assert await bstore.report("bdapps", "m0", Status.UNDELIVERED)  # late and contradicting
    assert await bstore.report("bdapps", "m1", None)  # known, not final
    assert not await bstore.report("bdapps", "nope", Status.DELIVERED)
    t = (await bstore.get("b")).totals
    assert (t.sent, t.delivered, t.failed, t.pending) == (2, 1, 0, 1)


async def test_same_name_with_another_fingerprint_is_refused_and_cancel_sticks(store):
    bstore = await make(store)
    with pytest.raises(BroadcastExists):
        await bstore.create(Spec(name="b", kind="sms", text="other", fingerprint="g", created_at=2.0))
    assert await bstore.cancel("b", now=3.0)
    assert await bstore.acquire("b", "one", now=4.0) is None
    assert not await bstore.cancel("b", now=5.0)
    assert await bstore.names() == ["b"]
