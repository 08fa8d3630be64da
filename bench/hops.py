"""Hop throughput: Alap against the shared bare BDApps baseline, in the same run.

    python bench/hops.py [--runs 3] [--users 32] [--seconds 6] [--warmup 2] [--workers 1]

This drives the benchmark of record (`../shared/bench/`, see its README): the server under test
pinned to core 0, the shared load generator (which is also the fake `/ussd/send` gateway) pinned
to core 1, 32 users walking the demo's 3-hop journey `*213#,1,0`, the baseline
(`bare_bdapps.py`: ack + Redis GET/SET + `/ussd/send` on a pooled client) and `alap serve` one
after the other in each run. Both use the Redis on 127.0.0.1:6379, database 12, as the shared
commands do; each invocation first deletes the `alap:*` and `bb:*` keys earlier ones left there
(`--keep-db` keeps them; `clear_benchmark_keys` says why). It prints each run's figures and the
medians with the two ratios the performance goal is stated in: hops/s (Alap / baseline) and p99
(Alap / baseline).

`--workers 2` runs `alap serve` with WEB_CONCURRENCY=2 and no pinning (both cores, the
generator time-shared with the server): the "workers scale" check on a 2-core machine.

`--compare DIR` also runs another checkout of Alap (say `git archive main | tar -x -C DIR`),
with this interpreter, after this one in each run: a change's effect measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
LOG_DIR = Path(tempfile.gettempdir())
BENCH_REDIS = "redis://127.0.0.1:6379/12"  # as the shared commands use it
LINE = re.compile(r"(?P<rate>\d+) hops/s, p50 (?P<p50>[\d.]+) ms, p99 (?P<p99>[\d.]+) ms, errors (?P<errors>\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(core: int | None, argv: list[str]) -> list[str]:
    if core is None or not shutil.which("taskset"):
        return argv
    return ["taskset", "-c", str(core), *argv]


def start(argv: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
    out = open(LOG_DIR / f"alap-bench-{log}.log", "wb")  # a pipe nobody reads would block the server
    return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_listening(port: int, proc: subprocess.Popen, path: str | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early; see {LOG_DIR}/alap-bench-*.log")
        try:
            if path:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1).read()
            else:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} did not come up")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(port: int, gateway_port: int, args: argparse.Namespace, core: int | None,
         proto: str = "bdapps", path: str = "/bdapps/ussd") -> dict:
    argv = pinned(core, [sys.executable, str(SHARED / "loadgen.py"), "--proto", proto,
                         "--url", f"http://127.0.0.1:{port}{path}", "--gateway-port", str(gateway_port),
                         "--inputs", "*213#,1,0", "--users", str(args.users), "--seconds", str(args.seconds),
                         "--warmup", str(args.warmup)])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.seconds + args.warmup + 60).stdout
    match = LINE.search(out)
    if not match:
        raise SystemExit(f"load generator printed no figures: {out!r}")
    return {k: float(v) for k, v in match.groupdict().items()}


def alap_env(port: int, base_url: str, args: argparse.Namespace) -> dict[str, str]:
    """The environment `alap serve` runs with in the benchmark (Redis database 12, English)."""
    return {**os.environ, "PORT": str(port), "REDIS_URL": BENCH_REDIS,
            "BDAPPS_BASE_URL": base_url, "BDAPPS_APP_ID": "APP_900001", "BDAPPS_PASSWORD": "pw",
            "ALAP_DEFAULT_LANGUAGE": "en", "ALAP_LOG_LEVEL": args.log_level,
            "WEB_CONCURRENCY": str(args.workers)}


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark of record's load (../shared/bench/README.md), for every script that drives it."""
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--warmup", type=float, default=2)


def clear_benchmark_keys() -> int:
    """Delete what earlier invocations left in database 12 (the baseline's `bb:` keys, Alap's
    `alap:` keys), so that every invocation starts from the same state. Left there, they made
    each set slower than the one before: a run is shorter than the 15 s sweep, so the
    open-sessions index only grows (125,000 sessions and 600,000 keys after a dozen sets), and
    Redis, which shares the server's core, looks keys up in an ever larger keyspace. Measured
    on 2026-12-02: 0.63-0.70 on the grown database, 0.85 right after clearing it."""
    import redis

    client = redis.Redis.from_url(BENCH_REDIS)
    deleted = 0
    for pattern in ("alap:*", "bb:*"):
        batch = []
        for key in client.scan_iter(match=pattern, count=5000):
            batch.append(key)
            if len(batch) == 5000:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
    client.close()
    return deleted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--workers", type=int, default=1, help="WEB_CONCURRENCY of alap serve (2: unpinned)")
    parser.add_argument("--log-level", default="info", help="ALAP_LOG_LEVEL of alap serve (production: info)")
    parser.add_argument("--compare", metavar="DIR", help="another Alap checkout to run in the same runs")
    parser.add_argument("--keep-db", action="store_true",
                        help="do not delete earlier invocations' alap:* and bb:* keys from database 12 first")
    args = parser.parse_args()
    if not (SHARED / "loadgen.py").exists():
        raise SystemExit(f"the shared benchmark is not at {SHARED}")
    if not args.keep_db:
        print(f"deleted {clear_benchmark_keys()} keys left in {BENCH_REDIS} by earlier invocations", flush=True)
    alap_bin = shutil.which("alap", path=str(Path(sys.executable).parent)) or "alap"
    server_core = 0 if args.workers == 1 else None
    gen_core = 1 if args.workers == 1 else None
    results: dict[str, list[dict]] = {"baseline": [], "alap": [], "compare": []}
    checkouts = [("alap", [alap_bin, "serve"], None)]
    if args.compare:  # `python -m server` from DIR finds DIR's package first
        checkouts.append(("compare", [sys.executable, "-m", "server", "serve"], args.compare))
    for run in range(1, args.runs + 1):
        gateway_port = free_port()
        base_url = f"http://127.0.0.1:{gateway_port}/bd"
        port = free_port()
        base = start(pinned(server_core, [sys.executable, str(SHARED / "bare_bdapps.py")]),
                     {**os.environ, "PORT": str(port), "BDAPPS_BASE_URL": base_url}, "baseline")
        try:
            wait_listening(port, base)
            results["baseline"].append(load(port, gateway_port, args, gen_core))
        finally:
            stop(base)
        for name, argv, cwd in checkouts:
            port = free_port()
            env = alap_env(port, base_url, args)
            alap = subprocess.Popen(pinned(server_core, argv), env=env, cwd=cwd,
                                    stdout=open(LOG_DIR / f"alap-bench-{name}.log", "wb"), stderr=subprocess.STDOUT)
            try:
                wait_listening(port, alap, "/healthz")
                results[name].append(load(port, gateway_port, args, gen_core))
            finally:
                stop(alap)
        b = results["baseline"][-1]
        line = f"run {run}: baseline {b['rate']:.0f} hops/s p50 {b['p50']:.1f} p99 {b['p99']:.1f} ms"
        for name, _, _ in checkouts:
            a = results[name][-1]
            line += (f" | {name} {a['rate']:.0f} hops/s p50 {a['p50']:.1f} p99 {a['p99']:.1f} ms errors {a['errors']:.0f}"
                     f" ratio {a['rate'] / b['rate']:.2f}, p99 x{a['p99'] / b['p99']:.2f}")
        print(line, flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    layout = "server on core 0, generator on core 1" if args.workers == 1 else f"{args.workers} workers, unpinned"
    print(f"\nmedians of {args.runs} runs, {args.users} users, {layout}:")
    print(f"  {'baseline':<9} {med('baseline', 'rate'):>6.0f} hops/s   p50 {med('baseline', 'p50'):.1f} ms   "
          f"p99 {med('baseline', 'p99'):.1f} ms")
    for name, _, cwd in checkouts:
        rate_ratio = statistics.median(a["rate"] / b["rate"] for a, b in zip(results[name], results["baseline"]))
        p99_ratio = statistics.median(a["p99"] / b["p99"] for a, b in zip(results[name], results["baseline"]))
        print(f"  {name:<9} {med(name, 'rate'):>6.0f} hops/s   p50 {med(name, 'p50'):.1f} ms   p99 {med(name, 'p99'):.1f} ms"
              f"{f'   ({cwd})' if cwd else ''}")
        print(f"  {'':<9} ratio {rate_ratio:.2f} of the baseline's hops/s (goal >= 0.75); "
              f"p99 x{p99_ratio:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
