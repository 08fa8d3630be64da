"""Broadcast benchmark: recipients per second through the sandbox BDApps gateway.

    python bench/broadcast.py [--recipients 20000] [--batch 100] [--rated 40]

A throwaway redis-server and the sandbox gateway (server/sandbox/bdapps.py, its per-SMS log
off) run in their own processes on core 1; the broadcast runs in this process, pinned to core 0,
exactly as `alap broadcast sms` / `alap worker` run it (the Redis progress store, batched
`/sms/send`, opt-out checks, delivery-report index). Two runs:

- the rate limit off (ALAP_SMS_RATE=0): the cost of Alap itself, per worker process;
- the default rate limit (ALAP_SMS_RATE=10 per second): what a real application gets.

Prints the loading time (FILE -> Redis), recipients per second while sending, this process's
peak memory (which must not grow with the number of recipients) and Redis memory per recipient.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

APP_ID, PASSWORD = "APP_BENCH", "bench-password"

GATEWAY = """
import logging, sys, structlog
from aiohttp import web
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
from server.sandbox.bdapps import create_bdapps_fake
web.run_app(create_bdapps_fake("http://127.0.0.1:9/bdapps/ussd", sys.argv[2], sys.argv[3]), host="127.0.0.1",
            port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(core: int, argv: list[str]) -> list[str]:
    return (["taskset", "-c", str(core)] if shutil.which("taskset") else []) + argv


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(name: str, count: int, rate: float, batch: int, redis_url: str, gateway_url: str, tmp: Path) -> None:
    import aiohttp

    from server.broadcast.context import BroadcastContext
    from server.broadcast.loading import create_broadcast, fingerprint
    from server.broadcast.store import Spec
    from server.config import load_settings
    from server.store.redis_backend import RedisStore

    path = tmp / f"{name}.txt"
    path.write_text("".join(f"0181{i:07d}\n" for i in range(count)))
    settings = load_settings().model_copy(update={
        "bdapps_app_id": APP_ID, "bdapps_password": PASSWORD, "bdapps_base_url": gateway_url,
        "sms_rate": rate, "sms_routes": "bdapps", "redis_url": redis_url, "log_level": "warning"})
    store = RedisStore.from_url(redis_url, f"bench-{name}:")
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    ctx = BroadcastContext(settings, store, http)
    spec = Spec(name=name, kind="sms", route="bdapps", text="Your bill of Tk 1,250 is due on 5 December.",
                source=str(path), created_at=time.time())
    spec.fingerprint = fingerprint(str(path), spec.text or "")
    rss_before = peak_rss_mb()
    redis_before = (await store.redis.info("memory"))["used_memory"]
    started = time.perf_counter()
    await create_broadcast(ctx.bstore, spec)
    loaded = time.perf_counter()
    result = await ctx.runner(spec, batch=batch).run(name)
    ended = time.perf_counter()
    t = result.broadcast.totals
    assert t.sent == count, t
    redis_bytes = (await store.redis.info("memory"))["used_memory"] - redis_before
    label = "limit off" if rate <= 0 else f"rate limit {rate:g}/s"
    print(f"{label:>20}: {count:,} recipients, loaded in {loaded - started:.2f} s, sent in {ended - loaded:.2f} s "
          f"= {count / (ended - loaded):,.0f} recipients/s (batch {batch}); peak RSS {peak_rss_mb():.0f} MB "
          f"(was {rss_before:.0f} MB)" + (f"; Redis +{redis_bytes / count:.0f} bytes per recipient" if count >= 1000
                                           else ""), flush=True)
    await ctx.aclose()
    await http.close()
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20000, help="recipients of the run with the limit off")
    parser.add_argument("--rated", type=int, default=40, help="recipients of the run at the default rate")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    tmp = Path(tempfile.mkdtemp(prefix="alap-bench-broadcast-"))
    redis_port, gateway_port = free_port(), free_port()
    procs = [subprocess.Popen(pinned(1, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(tmp)]), stdout=subprocess.DEVNULL),
             subprocess.Popen(pinned(1, [sys.executable, "-c", GATEWAY, str(gateway_port), APP_ID, PASSWORD]),
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})]
    try:
        wait_port(redis_port, procs[0])
        wait_port(gateway_port, procs[1])
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        import logging

        import structlog
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        redis_url, gateway_url = f"redis://127.0.0.1:{redis_port}/0", f"http://127.0.0.1:{gateway_port}"
        asyncio.run(run("off", args.recipients, 0.0, args.batch, redis_url, gateway_url, tmp))
        asyncio.run(run("rated", args.rated, 10.0, 10, redis_url, gateway_url, tmp))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
