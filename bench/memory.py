"""Memory sizing: Redis bytes per 10,000 concurrent USSD sessions, and Alap's RSS per worker.

    python bench/memory.py [--sessions 10000] [--workers 2] [--concurrency 256]

Part 1 (the store). A throwaway redis-server; for each scenario the database is emptied, the
keys are written through the real RedisStore exactly as hops leave them (claim: dedupe key +
lock + load, with the resume record read on mo-init; commit: session JSON and its owner with
their TTL, request marked done, lock released, the open-sessions index updated, and the resume
record written or forgotten as server/bdapps/resume.py decides), and the INFO used_memory delta
is printed per 10,000 sessions and per session. The published flow versions (every shipped
flow, as `alap serve` publishes them) are written inside the measured window of the session
scenarios, so their bytes are counted, shared out over the sessions. Session JSON comes from
the real engine running the demo flow (`encode_session` of a session mid-flow). Addresses have
the length of BDApps' masked ids, session and request ids the length of real ones; default key
prefix.

Part 2 (the process). `alap serve` with WEB_CONCURRENCY workers against the same Redis and a
minimal gateway in this process; RSS and PSS (/proc) of the master and each worker at idle,
then while N subscribers each walk three hops of the demo (dial, "2", "1250": N sessions left
open at ask_people), and the Redis used_memory delta of that run (a cross-check of part 1).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.app import build_engine  # noqa: E402
from server.bdapps.payloads import msisdn_of  # noqa: E402
from server.config import load_settings  # noqa: E402
from server.engine.engine import Subscriber  # noqa: E402
from server.engine.session import encode_session  # noqa: E402
from server.engine.versions import encode_source  # noqa: E402
from server.store import Profile  # noqa: E402
from server.store.base import ResumeKey, ResumeWrite  # noqa: E402
from server.store.redis_backend import RedisStore, connect  # noqa: E402
from server.upstreams import Upstreams  # noqa: E402

APP_ID, PASSWORD = "APP_MEMORY", "memory-password"
TTL = 180
RESUME_WINDOW = 120
VERSION_TTL = TTL + RESUME_WINDOW + 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def address(i: int) -> str:
    return f"tel:B%3C4pbgsm{i:024d}"  # the length of a masked BDApps address (37 characters)


def session_id(i: int) -> str:
    return f"{1330929317043 + i}"  # 13 digits


def request_id(i: int, hop: int) -> str:
    return f"{101911071630080060 + i * 10 + hop}"  # 18 digits


async def demo_sessions() -> tuple[list[tuple[bytes, bool]], dict[tuple[str, str], bytes]]:
    """The demo's session JSON after hop 1, 2 and 3 of the bill splitter (main menu,
    ask_total, ask_people with the amount in vars), each with whether it is resumable (then the
    hop also writes the resume record); and every flow version as `alap serve` publishes it."""
    settings = load_settings()
    upstreams = Upstreams.from_settings(settings)
    engine = build_engine(settings, upstreams=upstreams)
    subscriber = Subscriber(session_id(0), address(0), msisdn_of(address(0)))
    session, _ = await engine.start(subscriber, "*213#", "bn")
    states = [(encode_session(session), engine.resumable(session))]
    for message in ("2", "1250"):
        await engine.advance(session, subscriber, message)
        states.append((encode_session(session), engine.resumable(session)))
    await upstreams.aclose()
    versions = {(name, rt.version): encode_source(rt.source) for name, rt in engine.versions.current.items()}
    return states, versions


async def used_memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def in_batches(count: int, batch: int, work) -> None:
    for start in range(0, count, batch):
        await asyncio.gather(*(work(i) for i in range(start, min(count, start + batch))))


async def store_scenarios(redis_url: str, sessions: int, states: list[tuple[bytes, bool]],
                          versions: dict[tuple[str, str], bytes]) -> dict[str, float]:
    # One connection, one call at a time: each connection costs Redis a client buffer that
    # grows and shrinks with traffic, and would blur a delta of a few hundred bytes per key.
    store = RedisStore(connect(redis_url, max_connections=1))
    client = store.redis
    per_session: dict[str, float] = {}

    async def publish_versions() -> None:
        for (flow, version), data in versions.items():
            await store.versions.publish(flow, version, data, VERSION_TTL)

    async def measure(name: str, work, *, with_versions: bool = True) -> None:
        await client.flushall()
        before = await used_memory(client)
        if with_versions:
            await publish_versions()
        for i in range(sessions):
            await work(i)
        delta = await used_memory(client) - before
        keys = await client.dbsize()
        per_session[name] = delta / sessions
        print(f"  {name:<46} {delta / 1e6:7.2f} MB per {sessions:,}   {delta / sessions:6.0f} B each"
              f"   ({keys:,} keys)", flush=True)

    async def hops(i: int, count: int, final: bool = False) -> None:
        resume_key = ResumeKey(address(i), "demo")
        for hop in range(count):
            claim = await store.claim(session_id(i), request_id(i, hop), owner=address(i),
                                      profile_of=address(i) if hop == 0 else None,
                                      resume_of=resume_key if hop == 0 else None)
            assert claim.status == "ok", claim
            last = final and hop == count - 1
            data, resumable = states[min(hop, len(states) - 1)]
            data = None if last else data
            resume = ResumeWrite(resume_key, data if resumable else None, TTL + RESUME_WINDOW)
            await store.commit(claim.lease, data, TTL, answered=hop > 0, resume=resume)

    total_versions = sum(len(data) for data in versions.values())
    print(f"Redis used_memory, through RedisStore (session JSON {', '.join(str(len(s)) for s, _ in states)} bytes; "
          f"{len(versions)} published flow versions, {total_versions:,} bytes of JSON, counted in the session rows):")
    await measure("live session after 1 hop (menu)", lambda i: hops(i, 1))
    await measure("live session after 3 hops (mid-flow)", lambda i: hops(i, 3))
    await measure("ended session, 4 hops (dedupe keys, 10 min)", lambda i: hops(i, 4, final=True))
    await measure("subscriber profile (language chosen)",
                  lambda i: store.set_profile(address(i), Profile(lang="en")), with_versions=False)

    lock_token = "0123456789abcdef"

    async def locked(i: int) -> None:
        await client.set(store._lock_key(session_id(i)), lock_token, px=5000)

    await measure("hop in flight (session lock, 5 s at most)", locked, with_versions=False)
    await client.flushall()
    before = await used_memory(client)
    await publish_versions()
    shared = await used_memory(client) - before
    print(f"  {'the published flow versions alone':<46} {shared / 1e6:7.2f} MB in all ({len(versions)} versions;"
          f" twice that during a deploy)")

    # one key of each kind, as Redis accounts it
    await client.flushall()
    await hops(0, 3)
    await store.set_profile(address(0), Profile(lang="en"))
    usage = []
    for label, key in (("session", store._session_key(session_id(0))),
                       ("resume record", store.resume_key(ResumeKey(address(0), "demo"))),
                       ("dedupe", store._seen_key(session_id(0), request_id(0, 0))),
                       ("profile", store.profile_key(address(0)))):
        usage.append(f"{label} {await client.memory_usage(key)} B ({key})")
    print("  MEMORY USAGE of one key: " + ", ".join(usage))
    await client.flushall()
    await store.close()
    return per_session


# -- part 2: the process -----------------------------------------------------------------------
def rss_pss(pid: int) -> tuple[float, float | None]:
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:")) / 1024
    try:
        pss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                   if line.startswith("Pss:")) / 1024
    except (OSError, StopIteration):
        pss = None
    return rss, pss


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return sorted(found)


def show(label: str, master: int, workers: list[int]) -> None:
    parts = []
    for name, pid in [("master", master)] + [(f"worker {n + 1}", p) for n, p in enumerate(workers)]:
        rss, pss = rss_pss(pid)
        parts.append(f"{name} {rss:.0f} MB" + (f" (PSS {pss:.0f})" if pss is not None else ""))
    print(f"  {label:<26} " + ", ".join(parts), flush=True)


class Gateway:
    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future] = {}

    async def ussd_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        future = self.waiting.pop(body["sessionId"], None)
        if future and not future.done():
            future.set_result(body)
        return web.json_response({"statusCode": "S1000", "statusDetail": "Success", "requestId": "1", "version": "1.0"})


async def process_figures(redis_url: str, sessions: int, workers: int, concurrency: int, tmp: str) -> float:
    gateway = Gateway()
    app = web.Application()
    app.router.add_post("/ussd/send", gateway.ussd_send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    gateway_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", gateway_port, backlog=4096).start()  # a burst of new connections
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALAP_", "BDAPPS_", "PROMETHEUS_"))}
    env.update(PORT=str(port), REDIS_URL=redis_url, BDAPPS_APP_ID=APP_ID, BDAPPS_PASSWORD=PASSWORD,
               BDAPPS_BASE_URL=f"http://127.0.0.1:{gateway_port}", WEB_CONCURRENCY=str(workers),
               ALAP_LOG_LEVEL="warning")
    log = open(Path(tmp) / "alap-serve.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "server", "serve"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    client = aioredis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
            for _ in range(300):
                if server.poll() is not None:
                    raise SystemExit(f"alap serve exited; see {tmp}/alap-serve.log")
                try:
                    async with http.get(f"{url}/healthz") as resp:
                        if resp.status == 200 and len(children(server.pid)) >= workers:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            pids = children(server.pid)
            print(f"\nalap serve, {workers} worker(s) (RSS counts shared pages in every process; PSS shares them out):")
            show("idle", server.pid, pids)

            async def walk(i: int, tag: str) -> None:
                sid = f"{tag}{session_id(i)}"
                for hop, message in enumerate(("*213#", "2", "1250")):
                    future = asyncio.get_running_loop().create_future()
                    gateway.waiting[sid] = future
                    body = {"applicationId": APP_ID, "sessionId": sid, "requestId": f"{tag}{request_id(i, hop)}",
                            "ussdOperation": "mo-init" if hop == 0 else "mo-cont", "message": message,
                            "sourceAddress": address(i), "encoding": "440", "version": "1.0"}
                    async with http.post(f"{url}/bdapps/ussd", json=body) as resp:
                        await resp.read()
                        assert resp.status == 200, resp.status
                    try:
                        await asyncio.wait_for(future, 10)
                    except asyncio.TimeoutError:
                        tail = (Path(tmp) / "alap-serve.log").read_text(errors="replace")[-3000:]
                        raise SystemExit(f"no screen for {sid} hop {hop} in 10 s; alap serve's log ends:\n{tail}")

            await in_batches(concurrency, concurrency, lambda i: walk(i, "w"))  # warm-up: every code path once
            show("after warm-up", server.pid, pids)
            await client.flushall()
            await client.config_resetstat()
            peak = {pid: 0.0 for pid in pids}
            done = asyncio.Event()

            async def sample() -> None:
                while not done.is_set():
                    for pid in pids:
                        peak[pid] = max(peak[pid], rss_pss(pid)[0])
                    await asyncio.sleep(0.1)

            sampler = asyncio.create_task(sample())
            started = time.perf_counter()
            await in_batches(sessions, concurrency, lambda i: walk(i, ""))
            took = time.perf_counter() - started
            done.set()
            await sampler
            stats = await client.info("commandstats")
            redis_usec = sum(v["usec"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config"))
            show(f"{sessions:,} sessions open", server.pid, pids)
            print(f"  {'peak RSS under load':<26} " + ", ".join(f"worker {n + 1} {peak[p]:.0f} MB" for n, p in enumerate(pids)))
            print(f"  ({sessions * 3:,} hops in {took:.1f} s, {concurrency} subscribers at a time)")
            print(f"  Redis CPU per hop (INFO commandstats): {redis_usec / (sessions * 3):.1f} µs")
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        await runner.cleanup()
    # Once the server's connections are gone: the sessions it left (TTL 180 s) less an empty db.
    with_sessions = await used_memory(client)
    keys = await client.dbsize()
    await client.flushall()
    delta = with_sessions - await used_memory(client)
    await client.aclose()
    print(f"  Redis used_memory of the {keys:,} keys the server left for {sessions:,} open sessions "
          f"(3 hops each): {delta / 1e6:.2f} MB, {delta / sessions:.0f} B per session")
    return delta / sessions


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--skip-process", action="store_true", help="part 1 only")
    parser.add_argument("--skip-store", action="store_true", help="part 2 only")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("bench/memory.py needs redis-server on PATH (apt install redis-server)")

    tmp = tempfile.mkdtemp(prefix="alap-memory-")
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        probe = aioredis.from_url(redis_url)
        for _ in range(100):
            try:
                await probe.ping()
                break
            except Exception:
                await asyncio.sleep(0.05)
        info = await probe.info("server")
        memory = await probe.info("memory")
        await probe.aclose()
        print(f"redis {info['redis_version']} ({memory.get('mem_allocator')}), "
              f"{args.sessions:,} sessions per scenario\n")
        states, versions = await demo_sessions()
        if args.skip_store:
            await process_figures(redis_url, args.sessions, args.workers, args.concurrency, tmp)
            return
        per = await store_scenarios(redis_url, args.sessions, states, versions)
        live, ended, profile = (per["live session after 3 hops (mid-flow)"],
                                per["ended session, 4 hops (dedupe keys, 10 min)"],
                                per["subscriber profile (language chosen)"])
        print("\nsizing example: 10,000 sessions open at once, each 4 hops over 45 s "
              f"-> {10_000 / 45:.0f} sessions/s end, and each leaves its dedupe keys for 10 min:")
        ended_alive = 10_000 / 45 * 600
        total = 10_000 * live + ended_alive * ended
        print(f"  {10_000:,} open x {live:.0f} B + {ended_alive:,.0f} ended x {ended:.0f} B = {total / 1e6:.0f} MB"
              f" (+ {profile:.0f} B per subscriber with a saved language)")
        if not args.skip_process:
            await process_figures(redis_url, args.sessions, args.workers, args.concurrency, tmp)
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
