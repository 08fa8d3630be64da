"""Scheduled broadcasts (`--at`, Asia/Dhaka) are run by a real `alap worker` process; a worker
SIGKILLed mid-broadcast is replaced by another that continues it (never twice)."""
from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

from server.sandbox.bdapps import sent_sms

from .helpers import ALAP, cli_env, received, run_cli, start_gateway, wait_for, write_numbers
from .test_crash_resume import _cleanup


def dhaka(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at + 6 * 3600))


async def start_worker(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    worker_env = {**env, "ECARE_ACCESS_ID": "test", "ECARE_ACCESS_PASS": "test", "ECARE_URL": "http://127.0.0.1:9/x",
                  "ALAP_RECHARGE_HTTP_TIMEOUT": "0.5", "ALAP_WORKER_LEASE": "10", "ALAP_WORKER_POLL_INTERVAL": "0.1"}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(*ALAP, "worker", env=worker_env, stdout=out,
                                                    stderr=asyncio.subprocess.STDOUT)
    await wait_for(lambda: "recharge queue and broadcasts" in log.read_text(errors="replace") or proc.returncode,
                   timeout=60)
    assert proc.returncode is None, log.read_text()
    return proc


async def stop(proc: asyncio.subprocess.Process | None) -> None:
    if proc is not None and proc.returncode is None:
        proc.kill()
        await proc.wait()


async def test_a_scheduled_broadcast_is_sent_by_the_worker_at_its_time(aiohttp_server, redis_url, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 50)
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    env = cli_env(redis_url, prefix, url, ALAP_SMS_RATE="0")
    worker = None
    try:
        # The worker is up and polling before the broadcast is scheduled, so "not before its
        # time" is tested against a worker that is looking. 8 s leaves the CLI time on a loaded machine.
        worker = await start_worker(env, tmp_path / "worker.log")
        at = float(int(time.time()) + 8)  # whole seconds: what --at can say
        code, _, err = await run_cli("broadcast", "sms", "later", "--text", "Reminder: your bill is due tomorrow",
                                     "--to", str(tmp_path / "to.txt"), "--at", dhaka(at), env=env)
        assert code == 0, err
        assert f"later: scheduled for {dhaka(at)[:16]} Asia/Dhaka; `alap worker` will send it" in err
        await wait_for(lambda: len(sent_sms(gateway)) >= 50, timeout=90)
        assert min(sms["receivedAt"] for sms in sent_sms(gateway)) >= at  # not before its time
        assert received(gateway) == {a: 1 for a in addresses}
        code, out, _ = await run_cli("broadcast", "status", "later", env=env)
        assert "later (sms, route auto): done" in out and "sent 50" in out, out
    finally:
        await stop(worker)
        await _cleanup(redis_url, prefix)


async def test_a_worker_killed_mid_broadcast_is_continued_by_the_next(aiohttp_server, redis_url, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    addresses = write_numbers(tmp_path / "to.txt", 3000)
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    # A lease of 4 s instead of 10: the second worker waits for the dead one's to run out.
    env = cli_env(redis_url, prefix, url, ALAP_SMS_RATE="500", ALAP_BROADCAST_LEASE="4")
    first = second = None
    try:
        code, _, err = await run_cli("broadcast", "sms", "big", "--text", "Offer", "--to", str(tmp_path / "to.txt"),
                                     "--at", dhaka(time.time() + 10), env=env)
        assert code == 0, err
        assert "scheduled for" in err and sent_sms(gateway) == [], err
        first = await start_worker(env, tmp_path / "w1.log")
        await wait_for(lambda: len(sent_sms(gateway)) >= 800, timeout=60, interval=0.01)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        at_kill = len(sent_sms(gateway))
        assert at_kill < 3000
        second = await start_worker(env, tmp_path / "w2.log")
        # The dead worker's lease (4 s) runs out, then the new worker takes the broadcast over.
        await wait_for(lambda: len(sent_sms(gateway)) >= 2900, timeout=90)
        await asyncio.sleep(1)
        got = received(gateway)
        assert max(got.values()) == 1
        code, out, _ = await run_cli("broadcast", "status", "big", env=env)
        assert "big (sms, route auto): done" in out, out
        unknown = int(out.split("unknown ")[1].split()[0].replace(",", ""))
        sent = int(out.split("sent ")[1].split()[0].replace(",", ""))
        assert sent + unknown == 3000 and unknown <= 100
        assert len(set(addresses) - set(got)) <= unknown
    finally:
        await stop(first)
        await stop(second)
        await _cleanup(redis_url, prefix)
