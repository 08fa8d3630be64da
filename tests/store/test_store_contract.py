"""The store contract, run against both backends (Redis is a real server)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from server.engine.session import Session, decode_session, encode_session
from server.store import HopSuperseded, LockTimeout, Profile, StoreUnavailable
from server.store.redis_backend import RedisStore, connect

from tests.conftest import free_port


async def test_claim_dedupes_locks_and_loads(store):
    first = await store.claim("s1", "r1")
    assert first.status == "ok" and first.lease.session is None
    assert (await store.claim("s1", "r2")).status == "busy"  # lock held by r1
    assert await store.commit(first.lease, b'{"v":1}', 60)
    assert (await store.claim("s1", "r1")).status == "duplicate"  # r1 was committed
    again = await store.claim("s1", "r3")
    assert again.status == "ok" and again.lease.session == b'{"v":1}'
    await store.release(again.lease)


async def test_a_redelivery_of_an_uncommitted_request_takes_the_hop_over(store):
    """The first claim's answer may never have arrived (the gateway was told 503): the
    redelivery owns the hop now, lock included; the first delivery, if alive, writes nothing."""
    first = (await store.claim("s9", "r1")).lease
    second = await store.claim("s9", "r1")
    assert second.status == "ok"
    with pytest.raises(HopSuperseded):
        await store.commit(first, b"stale", 60)
    assert await store.commit(second.lease, b"fresh", 60)
    assert await store.get_session("s9") == b"fresh"
    assert (await store.claim("s9", "r1")).status == "duplicate"


async def test_a_waiting_delivery_taken_over_by_a_redelivery_gives_up(store):
    holder = (await store.claim("s10", "r0")).lease
    waiting = await store.claim("s10", "r1")
    assert waiting.status == "busy"
    again = await store.claim("s10", "r1")  # redelivered: the new delivery waits now
    assert again.status == "busy"
    await store.commit(holder, b"s", 60)
    with pytest.raises(HopSuperseded):
        await store.acquire("s10", pending=waiting.pending, wait=1)
    lease = await store.acquire("s10", pending=again.pending, wait=1)
    assert await store.commit(lease, b"t", 60)


async def test_a_session_refuses_other_addresses(store):
    lease = (await store.claim("s11", "r1", owner="tel:8801812345678")).lease
    await store.commit(lease, b"s", 60)
    assert (await store.claim("s11", "r2", owner="tel:8801899999999")).status == "foreign"
    assert (await store.claim("s11", "r2", owner="tel:8801812345678")).status == "ok"  # r2 was not marked


async def test_commit_with_a_stale_token_writes_nothing(store):
    lease = (await store.claim("s2", "r1")).lease
    stale = type(lease)(lease.session_id, "not-the-token", None)
    assert not await store.commit(stale, b"x", 60)
    assert await store.get_session("s2") is None
    assert await store.commit(lease, None, 60)


async def test_acquire_waits_for_the_holder(store):
    holder = (await store.claim("s3", "r1")).lease

    async def finish_later():
        await asyncio.sleep(0.05)
        await store.commit(holder, b"first", 60)

    task = asyncio.create_task(finish_later())
    lease = await store.acquire("s3", wait=2)
    assert lease.session == b"first"
    await task
    with pytest.raises(LockTimeout):
        await store.acquire("s3", wait=0.05)
    await store.release(lease)


async def test_commit_none_deletes_and_releases(store):
    lease = (await store.claim("s4", "r1")).lease
    await store.commit(lease, b"data", 60)
    lease = (await store.claim("s4", "r2")).lease
    await store.commit(lease, None, 60)
    assert await store.get_session("s4") is None
    assert (await store.claim("s4", "r3")).status == "ok"


async def test_profiles_outlive_sessions_and_load_with_the_claim(store):
    await store.set_profile("tel:8801812345678", Profile(lang="en"))
    claim = await store.claim("s5", "r1", profile_of="tel:8801812345678")
    assert claim.lease.profile == Profile(lang="en")
    await store.commit(claim.lease, None, 60)
    assert (await store.get_profile("tel:8801812345678")).lang == "en"
    assert (await store.get_profile("tel:unknown")) == Profile()


async def test_profile_fields_change_one_at_a_time(store):
    await store.update_profile("tel:8801700000001", lang="en")
    await store.update_profile("tel:8801700000001", opted_out=True)
    await store.update_profile("tel:8801700000001")  # nothing to change
    assert await store.get_profile("tel:8801700000001") == Profile(lang="en", opted_out=True)
    claim = await store.claim("s12", "r1", profile_of="tel:8801700000001")
    assert claim.lease.profile == Profile(lang="en", opted_out=True)
    await store.release(claim.lease)


async def test_redis_session_ttl_and_json(redis_store: RedisStore):
    lease = (await redis_store.claim("s6", "r1")).lease
    session = Session(flow="demo", state="main", lang="bn", vars={"amount": "12.50"}, history=["demo:main"])
    await redis_store.commit(lease, encode_session(session), 180)
    key = redis_store._session_key("s6")
    ttl = await redis_store.redis.ttl(key)
    assert 170 <= ttl <= 180
    raw = await redis_store.redis.get(key)
    assert json.loads(raw)["v"] == 1  # versioned JSON, readable in redis-cli
    assert decode_session(raw) == session
    assert "{s6}" in key  # one hash tag per session (Redis Cluster)


def test_unknown_session_versions_read_as_expired():
    assert decode_session(b'{"v": 99, "flow": "x", "state": "y", "lang": "bn"}') is None
    assert decode_session(b"\x80\x04pickle") is None


async def test_redis_unreachable_raises_store_unavailable():
    store = RedisStore(connect(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(StoreUnavailable):
        await store.claim("s7", "r1")
    assert await store.ping() is False
    await store.close()


async def test_claim_survives_a_script_cache_flush(redis_store: RedisStore):
    await redis_store.set_profile("tel:1", Profile(lang="en"))
    await redis_store.redis.script_flush()  # as after a Redis restart
    claim = await redis_store.claim("s8", "r1", profile_of="tel:1")
    assert claim.status == "ok" and claim.lease.profile.lang == "en"
    await redis_store.release(claim.lease)


async def test_open_sessions_index_counts_and_sweeps_once(store):
    first = (await store.claim("open-1", "r1")).lease
    await store.commit(first, b"s", 1, answered=False)  # expires, never answered: timed out
    second = (await store.claim("open-2", "r1")).lease
    await store.commit(second, b"s", 1, answered=True)  # expires after a reply: abandoned
    third = (await store.claim("open-3", "r1")).lease
    await store.commit(third, b"s", 60, answered=True)
    ended = (await store.claim("open-4", "r1")).lease
    await store.commit(ended, b"s", 60, answered=False)
    ended = (await store.claim("open-4", "r2")).lease
    await store.commit(ended, None, 60, answered=True)  # finished normally: leaves the index
    sms = (await store.claim("sms:x", "r1")).lease
    await store.commit(sms, b"s", 60)  # not a USSD session: not indexed
    assert await store.count_active() == 3
    deadline = time.monotonic() + 10  # Redis scores whole seconds (+0.5 once answered): up to 2.5 s
    while await store.count_active() != 1:
        assert time.monotonic() < deadline, await store.count_active()
        await asyncio.sleep(0.1)
    assert await store.sweep_expired() == (1, 1)
    assert await store.sweep_expired() == (0, 0)  # counted once
