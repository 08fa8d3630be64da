"""Throttling of outbound SMS: the per-route rate, the token bucket, BDApps E1318 (slow down) and
E1319 (daily limit: park until the next day), parked messages surviving a restart.

Shares the SMS harness of tests/messaging/test_routing_failover_and_reports.py."""
from __future__ import annotations

import asyncio
import time

from server.messaging import MessageStatus, TokenBucket, next_dhaka_day
from server.sandbox.bdapps import sms_error
from server.store import Profile
from server.store import open_message_log
from tests.messaging.test_routing_failover_and_reports import (  # noqa: F401  (env, mem_env are the shared fixtures)
    MASKED, ROBI, Env, env, mem_env,
)


async def test_rate_limit_is_observed(mem_env: Env) -> None:
    sender = mem_env.sender(rate=20)
    started = time.monotonic()
    sent = await asyncio.gather(*(sender.send(ROBI, f"n{i}", kind="notice") for i in range(11)))
    elapsed = time.monotonic() - started

    assert all(s.accepted for s in sent) and len(mem_env.bdapps_sms) == 11
    # 11 sends at 20/s with a burst of 1: the 11th may start 0.5 s after the first
    assert 0.45 <= elapsed < 1.5
    stamps = sorted(s["receivedAt"] for s in mem_env.bdapps_sms)
    assert stamps[-1] - stamps[0] >= 0.45


async def test_token_bucket_unlimited_and_slow_down() -> None:
    bucket = TokenBucket(0)
    started = time.monotonic()
    for _ in range(100):
        await bucket.acquire()
    assert time.monotonic() - started < 0.1

    bucket = TokenBucket(100)
    await bucket.slow_down(0.2)
    assert bucket.rate == 50
    started = time.monotonic()
    await bucket.acquire()
    assert time.monotonic() - started >= 0.19
    await bucket.speed_up()
    assert bucket.rate == 60


async def test_e1318_backs_off_and_retries_the_same_route(env: Env) -> None:
    env.fault(env.bdapps, "/sms/send", times=2, mode="body", json=sms_error("E1318"))
    sender = env.sender(rate=50, rate_limit_backoff=0.1)

    started = time.monotonic()
    sent = await sender.send(ROBI, "Hello", kind="notice")
    elapsed = time.monotonic() - started

    assert (sent.status, sent.route) == (MessageStatus.ACCEPTED, "bdapps")
    assert elapsed >= 0.3  # 0.1 s then 0.2 s
    assert len(env.calls(env.bdapps, "/sms/send")) == 3 and len(env.bdapps_sms) == 1
    assert env.calls(env.aamar, "/api") == []  # slowed down, not failed over
    assert sender.buckets["bdapps"].rate < 50


async def test_e1318_that_persists_fails_over_for_a_plain_number(env: Env) -> None:
    env.fault(env.bdapps, "/sms/send", mode="body", json=sms_error("E1318"))
    sender = env.sender(rate_limit_retries=1, rate_limit_backoff=0.01)

    sent = await sender.send("01812345678", "Hello", kind="notice")

    assert (sent.status, sent.route) == (MessageStatus.ACCEPTED, "aamarsms")
    assert len(env.calls(env.bdapps, "/sms/send")) == 2 and env.accepted_everywhere() == 1


async def test_e1319_parks_and_flush_sends_once(env: Env) -> None:
    env.fault(env.bdapps, "/sms/send", times=1, mode="body", json=sms_error("E1319"))
    sender = env.sender()

    sent = await sender.send(MASKED, "আপনার পার্সেল পৌঁছেছে", kind="notice")

    assert sent.status is MessageStatus.PARKED
    assert sent.not_before == next_dhaka_day(env.clock.now) and sent.not_before > env.clock.now
    assert await env.log.parked_count() == 1 and env.accepted_everywhere() == 0
    record = await env.log.get(sent.id)
    assert (record.status, record.code, record.text) == (MessageStatus.PARKED, "E1319", "আপনার পার্সেল পৌঁছেছে")

    # the route is paused for the day: the next message is parked without calling BDApps
    later = await sender.send(MASKED, "second", kind="notice")
    assert later.status is MessageStatus.PARKED and len(env.calls(env.bdapps, "/sms/send")) == 1

    assert await sender.flush_parked() == []  # not due yet
    env.clock.advance(sent.not_before - env.clock.now + 1)
    flushed = await sender.flush_parked()

    assert sorted(m.id for m in flushed) == sorted([sent.id, later.id])
    assert all(m.status is MessageStatus.ACCEPTED and m.route == "bdapps" for m in flushed)
    assert sorted(s["message"] for s in env.bdapps_sms) == sorted(["আপনার পার্সেল পৌঁছেছে", "second"])
    assert await sender.flush_parked() == [] and len(env.bdapps_sms) == 2  # once
    assert await env.log.parked_count() == 0
    record = await env.log.get(sent.id)
    by_text = {s["message"]: s["messageId"] for s in env.bdapps_sms}
    assert (record.status, record.text, record.message_ids) == (MessageStatus.ACCEPTED, None,
                                                                (by_text["আপনার পার্সেল পৌঁছেছে"],))


async def test_e1319_fails_over_for_a_number_another_route_reaches(env: Env) -> None:
    env.fault(env.bdapps, "/sms/send", times=1, mode="body", json=sms_error("E1319"))
    sent = await env.sender().send(ROBI, "Hello", kind="notice")
    assert (sent.status, sent.route) == (MessageStatus.ACCEPTED, "aamarsms")
    assert env.accepted_everywhere() == 1


async def test_parked_queue_survives_a_restart_and_two_flushers_send_once(env: Env) -> None:
    env.fault(env.bdapps, "/sms/send", times=1, mode="body", json=sms_error("E1319"))
    sent = await env.sender().send(MASKED, "kept", kind="notice")
    assert sent.parked
    env.clock.advance(2 * 86400)

    # new processes: fresh senders (no memory of the pause) over the same store
    a = env.sender(log=open_message_log(env.store) if env.store.name == "redis" else env.log)
    b = env.sender(log=open_message_log(env.store) if env.store.name == "redis" else env.log)
    first, second = await asyncio.gather(a.flush_parked(), b.flush_parked())

    assert len(first) + len(second) == 1
    assert [s["message"] for s in env.bdapps_sms] == ["kept"]


async def test_every_route_down_parks_with_retry_delay_then_sends(env: Env) -> None:
    for app, endpoint in ((env.bdapps, "/sms/send"), (env.aamar, "/api"), (env.dini, "/sendtext")):
        env.fault(app, endpoint, times=1, mode="status", status=503)
    sender = env.sender(retry_delay=30)

    sent = await sender.send("01812345678", "Hello", kind="notice")

    assert sent.status is MessageStatus.PARKED and [o.code for o in sent.outcomes] == ["http_503", "503", "503"]
    assert 30 <= sent.not_before - env.clock.now <= 3600
    env.clock.advance(sent.not_before - env.clock.now)
    (flushed,) = await sender.flush_parked()
    assert (flushed.id, flushed.status, flushed.route) == (sent.id, MessageStatus.ACCEPTED, "bdapps")
    assert env.accepted_everywhere() == 1


async def test_parked_message_of_someone_who_opted_out_meanwhile(env: Env) -> None:
    env.fault(env.bdapps, "/sms/send", times=1, mode="body", json=sms_error("E1319"))
    sender = env.sender()
    sent = await sender.send(MASKED, "offer", kind="notice")
    await env.store.set_profile(MASKED, Profile(opted_out=True))
    env.clock.advance(2 * 86400)

    (flushed,) = await sender.flush_parked()

    assert flushed.status is MessageStatus.OPTED_OUT and env.accepted_everywhere() == 0
    assert (await env.log.get(sent.id)).status is MessageStatus.OPTED_OUT
    assert await env.log.parked_count() == 0


