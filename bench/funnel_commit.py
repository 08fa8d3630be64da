"""The funnel counters' cost on the hop's commit (server/store/funnel.py): the same claim + commit
round trips of a Redis hop, with and without the counters, interleaved in rounds so that a busy
machine hurts both alike.

    python bench/funnel_commit.py [--hops 3000] [--rounds 5]

Starts a throwaway redis-server on a free loopback port. A hop here is what the store does for
one mo-cont of the demo flow: claim, then commit with the session, the open-sessions index and
(with counters) a transition and an entry in today's hash plus the session's waiting state.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.store.funnel import hop_counts  # noqa: E402
from server.store.redis_backend import RedisStore, connect  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def hops(store: RedisStore, n: int, counted: bool, tag: str) -> tuple[float, float, float]:
    """(wall seconds per hop, this process's CPU seconds per hop, Redis' own µs per hop in its
    scripts) for claim + commit, one session after another. The CPU figures (this process's, and
    Redis' INFO commandstats) are less disturbed by a busy machine than the wall time."""
    await store.redis.config_resetstat()
    session = b'{"v":1,"flow":"demo","state":"ask_people","lang":"en","vars":{"total":"1250"}}'
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        sid = f"{tag}-{i}"
        claim = await store.claim(sid, f"r{i}")
        funnel = hop_counts(("demo", "ask_total"), [("demo", "ask_people")], ("demo", "ask_people"), None,
                            subscriber=f"tel:88017{i:08d}") if counted else None
        await store.commit(claim.lease, session, 180, answered=True, funnel=funnel)
    elapsed, cpu = (time.perf_counter() - started) / n, (time.process_time() - cpu) / n
    scripts = (await store.redis.info("commandstats"))["cmdstat_evalsha"]
    return elapsed, cpu, scripts["usec"] / n


def _figures(f: tuple[float, float, float]) -> str:
    return f"{f[0] * 1e6:.0f} µs/hop wall, {f[1] * 1e6:.0f} µs CPU here, {f[2]:.1f} µs in Redis"


async def main(args: argparse.Namespace) -> None:
    port, data = free_port(), tempfile.mkdtemp(prefix="alap-bench-redis-")
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", data], stdout=subprocess.DEVNULL)
    try:
        await asyncio.sleep(0.5)
        store = RedisStore(connect(f"redis://127.0.0.1:{port}/0"), "bench:")
        await hops(store, 200, True, "warm")
        without, with_ = [], []
        for r in range(args.rounds):
            without.append(await hops(store, args.hops, False, f"a{r}"))
            with_.append(await hops(store, args.hops, True, f"b{r}"))
            print(f"round {r + 1}: without " + _figures(without[-1]) + "; with counters " + _figures(with_[-1]))
        for i, what in ((0, "wall time"), (1, "Alap process CPU"), (2, "Redis CPU")):
            a = statistics.median(x[i] for x in without) * (1 if i == 2 else 1e6)
            b = statistics.median(x[i] for x in with_) * (1 if i == 2 else 1e6)
            print(f"median {what}: without {a:.1f} µs/hop, with counters {b:.1f} µs/hop, +{b - a:.1f} µs ({(b / a - 1) * 100:+.0f}%)")
        await store.close()
    finally:
        redis.terminate()
        redis.wait(5)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
