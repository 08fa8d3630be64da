"""The SMS throttle is shared by every process on one Redis (server/messaging/throttle.py):
BDApps limits an application, not a process. Two senders, each with its own Redis client (as
two processes or hosts have), send through the sandbox gateway over real HTTP."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from server.messaging import SharedTokenBucket, SmsSender, build_sms_sender
from server.sandbox.bdapps import create_bdapps_fake, sent_sms, sms_error
from server.sandbox.faults import FAULTS_KEY, Fault
from server.store.redis_backend import RedisStore, connect

from ..conftest import APP_ID, PASSWORD
from ..conftest import test_settings as make_settings

RATE = 4.0  # SMS per second for the whole application


async def two_senders(aiohttp_server, redis_url: str, **options: Any) -> tuple[Any, list[SmsSender], list[Any]]:
    gateway = create_bdapps_fake("http://127.0.0.1:9/unused", APP_ID, PASSWORD)
    url = str((await aiohttp_server(gateway)).make_url("")).rstrip("/")
    settings = make_settings(bdapps_base_url=url, sms_routes="bdapps", sms_rate=RATE)
    prefix = f"alap-throttle-{uuid.uuid4().hex[:8]}:"
    senders, closers = [], []
    for _ in range(2):  # each "process" has its own Redis client and HTTP session
        store = RedisStore(connect(redis_url), prefix)
        http = aiohttp.ClientSession()
        senders.append(build_sms_sender(settings, http, store, **options))
        closers += [store, http]
    return gateway, senders, closers


async def close(closers: list[Any]) -> None:
    for thing in closers:
        await thing.close()


async def test_two_senders_share_one_rate(aiohttp_server, redis_url):
    gateway, senders, closers = await two_senders(aiohttp_server, redis_url)
    try:
        assert all(isinstance(s.buckets["bdapps"], SharedTokenBucket) for s in senders)
        sends = [sender.send("tel:8801812345678", f"message {i} from sender {n}", kind="reply")
                 for i in range(6) for n, sender in enumerate(senders)]
        results = await asyncio.gather(*sends)
    finally:
        await close(closers)
    assert all(r.accepted for r in results)
    stamps = sorted(s["receivedAt"] for s in sent_sms(gateway))
    assert len(stamps) == 12
    # 12 sends at 4/s for the application (one token saved up): the last one at least 2.75 s
    # after the first. Two buckets of their own would have finished in 1.25 s.
    assert stamps[-1] - stamps[0] >= 2.5


async def test_an_e1318_brake_slows_every_sender(aiohttp_server, redis_url):
    gateway, senders, closers = await two_senders(aiohttp_server, redis_url, rate_limit_backoff=0.5)
    first, second = senders
    try:
        gateway[FAULTS_KEY].add(Fault(endpoint="/sms/send", mode="body", json=sms_error("E1318"), times=1))
        sent = await first.send("tel:8801812345678", "braked", kind="reply")
        assert sent.accepted
        # Halved by the E1318, a tenth of the configured rate back after the retry succeeded:
        # the other process sees it.
        assert await second.buckets["bdapps"].shared_rate() == pytest.approx(RATE / 2 + RATE / 10)
    finally:
        await close(closers)
