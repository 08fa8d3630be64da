"""Overload: offer more hops than Alap can serve, open-loop, and count what each hop got.

    python bench/overload.py [--capacity N] [--factors 0.8,1.5,3] [--seconds 15]

Layout as in the shared benchmark: `alap serve` pinned to core 0 (Redis on 127.0.0.1:6379,
database 12), this script (generator and fake `/ussd/send` gateway) pinned to core 1. Without
`--capacity` it first measures the closed-loop capacity with the shared load generator (32 users).

Then, for each factor, it starts new sessions at `factor x capacity / 3` per second for
`--seconds` (each session walks the demo's 3-hop journey `*213#,1,0`, one hop after the screen
of the previous one, as a subscriber would), so hops are offered at about `factor x capacity`
per second whatever the server does. A refused callback (anything but 200 S1000) ends its session
here; BDApps would redeliver it later. For each factor it prints: hops offered, acked, refused,
acked with a screen, acked answered "busy", acked with no screen (10 s), and the screen latency
p50/p99 of the acked hops. The goal at 3x: no acked hop without a screen, no "busy" answer caused
by overload, and the acked hops' p99 within 2x the p99 at 0.8x.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hops import LOG_DIR, free_port, load, pinned, start, stop, wait_listening  # noqa: E402

BUSY_MARK = "busy"  # server/render/system.py SERVICE_BUSY, in English (ALAP_DEFAULT_LANGUAGE=en)
JOURNEY = ["*213#", "1", "0"]


class Gateway:
    """The fake `/ussd/send`: wakes the hop waiting for its session's screen."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future] = {}
        self.strays = 0

    async def ussd_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        future = self.waiting.pop(body.get("sessionId"), None)
        if future is not None and not future.done():
            future.set_result((time.perf_counter(), body.get("message", "")))
        else:
            self.strays += 1  # a screen for a hop already given up on
        return web.json_response({"statusCode": "S1000", "statusDetail": "Success", "requestId": "1",
                                  "version": "1.0"})


async def offer(url: str, gateway: Gateway, rate: float, seconds: float, tag: str) -> dict:
    counts = dict(offered=0, acked=0, refused=0, screen=0, busy=0, no_screen=0)
    latencies: list[float] = []
    ids = itertools.count()

    async def session(http: aiohttp.ClientSession) -> None:
        sid = f"{tag}-{next(ids)}"
        address = f"tel:88018{hash(sid) % 10**8:08d}"
        for i, message in enumerate(JOURNEY):
            future = asyncio.get_running_loop().create_future()
            gateway.waiting[sid] = future
            body = {"applicationId": "APP_900001", "sessionId": sid, "requestId": f"{sid}-{i}",
                    "ussdOperation": "mo-init" if i == 0 else "mo-cont", "message": message,
                    "sourceAddress": address, "encoding": "440", "version": "1.0"}
            counts["offered"] += 1
            sent = time.perf_counter()
            try:
                async with http.post(url, json=body) as resp:
                    ack = await resp.json(content_type=None) if resp.status == 200 else {}
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                ack = {}
            if ack.get("statusCode") != "S1000":
                counts["refused"] += 1
                gateway.waiting.pop(sid, None)
                return
            counts["acked"] += 1
            try:
                arrived, screen = await asyncio.wait_for(future, 10)
            except asyncio.TimeoutError:
                counts["no_screen"] += 1
                gateway.waiting.pop(sid, None)
                return
            latencies.append((arrived - sent) * 1000)
            if BUSY_MARK in screen.lower():
                counts["busy"] += 1
                return
            counts["screen"] += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:
        tasks: set[asyncio.Task] = set()
        interval = 3.0 / rate  # one new session per interval: three hops each
        began = time.perf_counter()
        n = 0
        while (now := time.perf_counter()) - began < seconds:
            due = int((now - began) / interval) + 1
            while n < due:
                task = asyncio.create_task(session(http))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(0.002)
        if tasks:
            await asyncio.wait(tasks, timeout=40)
    latencies.sort()
    counts["p50"] = statistics.median(latencies) if latencies else float("nan")
    counts["p99"] = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
    return counts


async def run(args: argparse.Namespace, port: int, gateway_port: int, capacity: float) -> None:
    gateway = Gateway()
    app = web.Application()
    app.router.add_post("/bd/ussd/send", gateway.ussd_send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", gateway_port).start()
    print(f"capacity {capacity:.0f} hops/s (closed loop, 32 users)")
    print(f"{'factor':>6} {'offered':>8} {'acked':>7} {'refused':>8} {'screen':>7} {'busy':>5} "
          f"{'no screen':>9} {'p50 ms':>7} {'p99 ms':>7}")
    try:
        for factor in args.factors:
            c = await offer(f"http://127.0.0.1:{port}/bdapps/ussd", gateway, factor * capacity, args.seconds,
                            f"ov{factor}-{time.time_ns()}")
            print(f"{factor:>6} {c['offered']:>8} {c['acked']:>7} {c['refused']:>8} {c['screen']:>7} "
                  f"{c['busy']:>5} {c['no_screen']:>9} {c['p50']:>7.1f} {c['p99']:>7.1f}", flush=True)
            await asyncio.sleep(3)  # let the server settle between loads
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=float, help="hops/s; measured first when omitted")
    parser.add_argument("--factors", default="0.8,1.5,3")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    args.factors = [float(f) for f in args.factors.split(",")]
    args.users, args.warmup = 32, 2
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    alap_bin = shutil.which("alap", path=str(Path(sys.executable).parent)) or "alap"
    gateway_port, port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": "redis://127.0.0.1:6379/12",
           "BDAPPS_BASE_URL": f"http://127.0.0.1:{gateway_port}/bd", "BDAPPS_APP_ID": "APP_900001",
           "BDAPPS_PASSWORD": "pw", "ALAP_DEFAULT_LANGUAGE": "en", "ALAP_LOG_LEVEL": args.log_level}
    alap = start(pinned(0, [alap_bin, "serve"]), env, "overload")
    try:
        wait_listening(port, alap, "/healthz")
        capacity = args.capacity
        if capacity is None:
            closed = argparse.Namespace(users=32, seconds=6, warmup=2)
            capacity = load(port, gateway_port, closed, 1)["rate"]
        asyncio.run(run(args, port, gateway_port, capacity))
    finally:
        stop(alap)
        print(f"(server log: {LOG_DIR}/alap-bench-overload.log)")


if __name__ == "__main__":
    main()
