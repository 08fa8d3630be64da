"""Published flow versions on both backends (the Redis one a real redis-server): publish,
fetch, keep-alive that reports what the store lost, the live listing, and resume records
written and forgotten in the commit's round trip."""
from __future__ import annotations

from server.store import Store
from server.store.base import ResumeKey, ResumeWrite
from server.store.redis_backend import RedisStore


async def test_versions_are_published_fetched_kept_and_listed(store: Store):
    await store.versions.publish("demo", "aaaaaaaaaaaa", b'{"v": 1}', 300)
    assert await store.versions.fetch("demo", "aaaaaaaaaaaa") == b'{"v": 1}'
    assert await store.versions.fetch("demo", "bbbbbbbbbbbb") is None
    missing = await store.versions.keep([("demo", "aaaaaaaaaaaa"), ("demo", "bbbbbbbbbbbb")], 900)
    assert missing == [("demo", "bbbbbbbbbbbb")]
    live = await store.versions.live()
    assert set(live) == {("demo", "aaaaaaaaaaaa")} and 800 < live[("demo", "aaaaaaaaaaaa")] <= 900


async def test_sessions_are_listed_for_counting(store: Store):
    for n in range(3):
        claim = await store.claim(f"s{n}", "r1")
        await store.commit(claim.lease, f'{{"n": {n}}}'.encode(), 60, answered=False)
    assert sorted([data async for data in store.versions.sessions()]) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']


async def test_a_resume_record_is_read_with_the_claim_and_written_with_the_commit(store: Store):
    key = ResumeKey("tel:8801812345678", "demo")
    claim = await store.claim("s1", "r1", profile_of="tel:8801812345678", resume_of=key)
    assert claim.lease.resume is None
    assert await store.commit(claim.lease, b"state-1", 60, answered=False, resume=ResumeWrite(key, b"state-1", 90))
    claim = await store.claim("s2", "r1", profile_of="tel:8801812345678", resume_of=key)
    assert claim.lease.resume == b"state-1"
    assert await store.commit(claim.lease, None, 60, answered=False, resume=ResumeWrite(key, None, 0))
    assert await store.get_resume(key) is None


async def expire_lock(store: Store, session_id: str) -> None:
    """What LOCK_TTL does to a hop that took too long (without waiting 5 s)."""
    if isinstance(store, RedisStore):
        await store.redis.delete(store._lock_key(session_id))
    else:
        store.locks.pop(session_id)


async def test_a_commit_that_lost_its_lock_leaves_no_stale_record(store: Store):
    key = ResumeKey("tel:8801812345678", "demo")
    slow = await store.claim("s1", "r1")
    await expire_lock(store, "s1")
    second = await store.claim("s1", "r2")  # the next hop took the session meanwhile
    assert second.status == "ok"
    assert not await store.commit(slow.lease, b"stale", 60, resume=ResumeWrite(key, b"stale", 90))
    assert await store.get_resume(key) is None  # no offer of a stale screen
    assert await store.commit(second.lease, b"fresh", 60, resume=ResumeWrite(key, b"fresh", 90))
    assert await store.get_resume(key) == b"fresh"
    slow = await store.claim("s1", "r3")
    await expire_lock(store, "s1")
    third = await store.claim("s1", "r4")
    assert not await store.commit(slow.lease, b"stale", 60, resume=ResumeWrite(key, b"stale", 90))
    assert await store.get_resume(key) in (b"fresh", None)  # never the stale screen
    await store.release(third.lease)
