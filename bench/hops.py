"""Hop benchmark: Alap (`alap serve`, Redis store) against a bare aiohttp+Redis baseline.

    python bench/hops.py [--users 32] [--seconds 10] [--runs 3]

Layout on a 2-core machine: the server under test is pinned to core 0 with taskset; Redis and
this load generator (which is also the fake BDApps gateway receiving `/ussd/send`) share core 1.
Each simulated subscriber repeats a 3-hop journey of the demo flow (dial *213#, "2", "1250").
A hop's latency is from sending the callback to the screen arriving at the gateway. The
baseline's latency is request -> response. Prints per-run figures and the medians.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
APP_ID, PASSWORD = "APP_BENCH", "bench-password"
JOURNEY = ["*213#", "2", "1250"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(core: int, argv: list[str]) -> list[str]:
    return (["taskset", "-c", str(core)] if shutil.which("taskset") else []) + argv


LOG_DIR = Path(tempfile.gettempdir())


def start(argv: list[str], env: dict[str, str] | None = None, log: str = "bench") -> subprocess.Popen:
    """Output goes to a file (a pipe nobody reads would eventually block the server)."""
    out = open(LOG_DIR / f"alap-{log}.log", "wb")
    return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_up(url: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if proc.poll() is not None:
                raise SystemExit(f"server exited; see {LOG_DIR}/alap-*.log")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Gateway:
    """Receives `/ussd/send` and wakes the subscriber waiting for that session's screen."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future] = {}

    async def ussd_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        future = self.waiting.pop(body["sessionId"], None)
        if future and not future.done():
            future.set_result((time.perf_counter(), body))
        return web.json_response({"statusCode": "S1000", "statusDetail": "Success", "requestId": "1", "version": "1.0"})


async def drive_alap(url: str, gateway: Gateway, users: int, seconds: float, warmup: float, tag: str) -> dict:
    ids = itertools.count()
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = time.perf_counter() + warmup + seconds

    async def user(http: aiohttp.ClientSession, n: int) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            session_id = f"{tag}-{n}-{next(ids)}"  # unique across runs: request ids are deduplicated
            for i, message in enumerate(JOURNEY):
                future = asyncio.get_running_loop().create_future()
                gateway.waiting[session_id] = future
                body = {"applicationId": APP_ID, "sessionId": session_id, "requestId": f"{session_id}-{i}",
                        "ussdOperation": "mo-init" if i == 0 else "mo-cont", "message": message,
                        "sourceAddress": f"tel:88017{n:08d}", "encoding": "440", "version": "1.0"}
                sent = time.perf_counter()
                async with http.post(url, json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                try:
                    arrived, screen = await asyncio.wait_for(future, 5)
                except asyncio.TimeoutError:
                    errors += 1
                    break
                if measuring:
                    latencies.append((arrived - sent) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=users * 2)) as http:
        tasks = [asyncio.create_task(user(http, n)) for n in range(users)]
        await asyncio.sleep(warmup)
        measuring = True
        began = time.perf_counter()
        count_before = len(latencies)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    return {"rate": (len(latencies) - count_before) / elapsed, "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99), "errors": errors}


async def drive_baseline(url: str, users: int, seconds: float, warmup: float) -> dict:
    latencies: list[float] = []
    measuring = False
    stop_at = time.perf_counter() + warmup + seconds
    ids = itertools.count()

    async def user(http: aiohttp.ClientSession, n: int) -> None:
        while time.perf_counter() < stop_at:
            body = {"sessionId": f"b{n}-{next(ids) // 3}", "message": "1"}
            sent = time.perf_counter()
            async with http.post(url, json=body) as resp:
                await resp.read()
            if measuring:
                latencies.append((time.perf_counter() - sent) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=users * 2)) as http:
        tasks = [asyncio.create_task(user(http, n)) for n in range(users)]
        await asyncio.sleep(warmup)
        measuring = True
        began = time.perf_counter()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    return {"rate": len(latencies) / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "errors": 0}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--log-level", default="info", help="ALAP_LOG_LEVEL of the server (production default: info)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})  # the load generator and gateway stay off the server's core

    tmp = tempfile.mkdtemp(prefix="alap-bench-")
    redis_port = free_port()
    redis = start(pinned(1, ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                             "--dir", tmp]), log="bench-redis")
    redis_url = f"redis://127.0.0.1:{redis_port}/0"

    gateway = Gateway()
    gateway_app = web.Application()
    gateway_app.router.add_post("/ussd/send", gateway.ussd_send)
    runner = web.AppRunner(gateway_app, access_log=None)
    await runner.setup()
    gateway_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", gateway_port).start()

    results: dict[str, list[dict]] = {"alap": [], "baseline": []}
    try:
        for run in range(1, args.runs + 1):
            port = free_port()
            env = {**os.environ, "PORT": str(port), "REDIS_URL": redis_url, "BDAPPS_APP_ID": APP_ID,
                   "BDAPPS_PASSWORD": PASSWORD, "BDAPPS_BASE_URL": f"http://127.0.0.1:{gateway_port}",
                   "ALAP_LOG_LEVEL": args.log_level}
            alap = start(pinned(0, [sys.executable, "-m", "server", "serve"]), env, "bench-server")
            try:
                await wait_up(f"http://127.0.0.1:{port}/healthz", alap)
                figures = await drive_alap(f"http://127.0.0.1:{port}/bdapps/ussd", gateway, args.users,
                                           args.seconds, args.warmup, f"run{run}")
            finally:
                alap.terminate()
                alap.wait(10)
            results["alap"].append(figures)

            port = free_port()
            base = start(pinned(0, [sys.executable, str(ROOT / "bench" / "baseline_server.py"), str(port), redis_url]), log="bench-baseline")
            try:
                await wait_up(f"http://127.0.0.1:{port}/healthz", base)
                figures = await drive_baseline(f"http://127.0.0.1:{port}/bdapps/ussd", args.users,
                                               args.seconds, args.warmup)
            finally:
                base.terminate()
                base.wait(10)
            results["baseline"].append(figures)
            a, b = results["alap"][-1], results["baseline"][-1]
            print(f"run {run}: alap {a['rate']:.0f} hops/s p50 {a['p50']:.2f} ms p99 {a['p99']:.2f} ms "
                  f"(errors {a['errors']}) | baseline {b['rate']:.0f} req/s p50 {b['p50']:.2f} ms "
                  f"p99 {b['p99']:.2f} ms | ratio {a['rate'] / b['rate']:.2f}", flush=True)
    finally:
        await runner.cleanup()
        redis.terminate()
        redis.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)

    med = {name: {k: statistics.median(r[k] for r in runs) for k in ("rate", "p50", "p99")}
           for name, runs in results.items()}
    ratios = [a["rate"] / b["rate"] for a, b in zip(results["alap"], results["baseline"])]
    print(f"\nmedian of {args.runs} runs, {args.users} users, server pinned to core 0:")
    print(f"  alap      {med['alap']['rate']:.0f} hops/s   p50 {med['alap']['p50']:.2f} ms   p99 {med['alap']['p99']:.2f} ms")
    print(f"  baseline  {med['baseline']['rate']:.0f} req/s    p50 {med['baseline']['p50']:.2f} ms   "
          f"p99 {med['baseline']['p99']:.2f} ms")
    print(f"  ratio     {statistics.median(ratios):.2f} of baseline")


if __name__ == "__main__":
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(main())
