"""Soak: `alap serve` for a long while at half its measured peak, with a flaky gateway and
Redis restarted under it. A script that prints figures, not a test.

    python bench/soak.py                      # 10 minutes, peak measured first
    python bench/soak.py --minutes 2 --rate 150

What it starts: a redis-server of its own on a free port (appendonly, as docs/deploy.md
recommends), `alap serve` (WEB_CONCURRENCY=--workers) pointed at it, and, in a process of its
own, the sandbox BDApps gateway (server/sandbox/bdapps.py) receiving `/ussd/send` and reporting
each screen to this process (the generator) over a UNIX socket. With one worker, the server is
pinned to core 0 and the generator and gateway to core 1, as in ../shared/bench. The generator
delivers callbacks over a pool of --connections connections, as a gateway does.

1. Peak: --users subscribers in a closed loop for --peak-seconds, no faults: hops per second.
2. Soak: new subscribers arrive at a steady rate so that hops run at half that peak (or
   --rate); each walks the demo's bill splitter (dial *213#, "2", "1250", "4": four hops, the
   last one final), one hop after the screen of the previous one. The gateway refuses
   --fail-share (5%) of `/ussd/send` calls with E1603, a retryable code (the sandbox's fault
   injection, `chance`); Redis is stopped and started again --restarts times, evenly spread,
   down for --redis-down seconds each time.

Callbacks are delivered again like a gateway that retries does: a callback answered anything but
S1000 (503 E1603 while Redis is away) or not answered at all is delivered again, same requestId,
for up to --redeliver-for seconds. BDApps' own redelivery schedule is not documented (the seeds
say nothing of it), so --redelivery picks one: `backoff` (the default) waits 0.5 s, 1 s, 2 s,
then 4 s between deliveries, each with jitter (half fixed, half random), the usual practice of a
gateway that must not flood a recovering server; `fixed` redelivers every 0.5 s, in step, the
harshest schedule (a retry storm). Such a callback is not lost. A hop is lost when its callback was
answered S1000 and its screen never arrived (within --screen-timeout seconds). Lost hops whose
every `/ussd/send` attempt the gateway refused are shown apart: with 5% refusals and three
attempts per screen, about one screen in 8,000 cannot get through at all.

Prints: hops sent, screens delivered, hops lost, answers by HTTP status (5xx split into the
503s caused by a Redis outage, which BDApps retries, and any other), how long the server took to
recover after each restart, and the RSS of the server's worker at the start and the end of the
soak. A 503 is caused by the outage when Redis was down, or when it came while the callbacks
refused during the outage were still being redelivered (the server refusing fast, by admission
control, while it works through that backlog); the recovery lasts until the last of those
callbacks is acked.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.sandbox.bdapps import SCREENS, create_bdapps_fake  # noqa: E402
from server.sandbox.faults import FAULTS_KEY  # noqa: E402

APP_ID, PASSWORD = "APP_SOAK", "soak-password"
_JSON = {"Content-Type": "application/json"}
_ANSWER_TIMEOUT = aiohttp.ClientTimeout(total=10)  # a callback not answered in 10 s is delivered again
JOURNEY = ["*213#", "2", "1250", "4"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


class Redis:
    """A redis-server of the soak's own, stopped and started on the same port and data dir."""

    def __init__(self, folder: str) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.down_since: float | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        self.down_since = None
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.down_since = time.monotonic()
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None


@dataclass
class Figures:
    hops_sent: int = 0  # callbacks (first deliveries) posted
    acked: int = 0  # hops answered S1000 (at the first delivery or a later one)
    screens: int = 0  # screens that arrived for acked hops
    lost: int = 0  # acked, and no screen within the timeout
    lost_refused: int = 0  # ... of which the gateway refused every attempt of the screen
    refused_for_good: int = 0  # never answered S1000 within the redelivery window (BDApps gives up)
    redeliveries: int = 0
    answers: Counter = field(default_factory=Counter)  # HTTP status (or "no answer") of every delivery
    answers_503_redis_down: int = 0  # 503s while Redis was down, or during the recovery after it
    recoveries: list[float] = field(default_factory=list)  # s from Redis back to the backlog acked
    journeys: int = 0
    generator_lag: float = 0.0  # s the arrivals fell behind their schedule at worst (this process saturated)
    journeys_cut: int = 0  # a final screen came before the journey's last hop (e.g. a session lost)
    extra_screens: int = 0  # screens nobody asked for (a hop processed twice)
    lost_examples: list[str] = field(default_factory=list)
    cut_screens: Counter = field(default_factory=Counter)  # the final screens that cut journeys short

    @property
    def fivexx(self) -> int:
        return sum(n for status, n in self.answers.items() if isinstance(status, int) and status >= 500)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="alap-soak-")
        self.redis = Redis(self.tmp)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/bdapps/ussd"
        self.gateway_port = free_port()
        self.gateway_socket = str(Path(self.tmp) / "screens.sock")
        self.gateway: subprocess.Popen | None = None
        self.screens: defaultdict[str, asyncio.Queue] = defaultdict(asyncio.Queue)  # session id -> screens
        self.delivering = asyncio.Semaphore(args.connections)
        self.refusals: defaultdict[str, int] = defaultdict(int)  # session id -> /ussd/send refused
        self.server: subprocess.Popen | None = None
        self.screen_feed: asyncio.AbstractServer | None = None
        self.log_path = Path(self.tmp) / "alap-serve.log"
        self.ids = itertools.count()
        self.figures = Figures()
        self.last_restart_end = 0.0
        self.outage_backlog: set[str] = set()  # requestIds refused while Redis was down, not yet acked

    # -- the gateway's reports ----------------------------------------------------------------
    async def _read_screens(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One JSON line per `/ussd/send` from the gateway process (run_gateway below)."""
        async for line in reader:
            sent = json.loads(line)
            if sent["refused"]:
                self.refusals[sent["sessionId"]] += 1
            else:
                self.screens[sent["sessionId"]].put_nowait(sent["screen"])
        writer.close()

    # -- processes ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.redis.start()
        self.screen_feed = await asyncio.start_unix_server(self._read_screens, self.gateway_socket)
        gateway = [sys.executable, str(Path(__file__).resolve()), "--gateway", str(self.gateway_port),
                   self.gateway_socket]
        if self.args.pin:
            gateway = ["taskset", "-c", "1", *gateway]
        self.gateway = subprocess.Popen(gateway, cwd=ROOT)
        gateway_port = self.gateway_port
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT"))}
        env.update(PORT=str(self.port), REDIS_URL=self.redis.url, BDAPPS_APP_ID=APP_ID, BDAPPS_PASSWORD=PASSWORD,
                   BDAPPS_BASE_URL=f"http://127.0.0.1:{gateway_port}", BDAPPS_ALLOWED_IPS="127.0.0.0/8",
                   ALAP_DEFAULT_LANGUAGE="en", WEB_CONCURRENCY=str(self.args.workers),
                   ALAP_LOG_LEVEL=self.args.log_level)
        with open(self.log_path, "wb") as out:
            argv = [sys.executable, "-m", "server", "serve"]
            if self.args.pin:  # the server on core 0, this process (generator and gateway) on core 1
                argv = ["taskset", "-c", "0", *argv]
            self.server = subprocess.Popen(argv, env=env, stdout=out,
                                           stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the gateway first
                try:
                    async with http.delete(f"http://127.0.0.1:{gateway_port}/_control/calls"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            for _ in range(600):
                if self.server.poll() is not None:
                    raise SystemExit(f"alap serve exited; see {self.log_path}")
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200 and len(self.workers()) >= self.args.workers:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit("alap serve did not become healthy")

    def workers(self) -> list[int]:
        return children(self.server.pid) if self.server else []

    def worker_rss(self) -> list[float]:
        return [r for r in (rss_mb(pid) for pid in self.workers()) if r is not None]

    async def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            for _ in range(300):
                if self.server.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                os.killpg(self.server.pid, signal.SIGKILL)
        if self.gateway is not None:
            self.gateway.terminate()
            self.gateway.wait(10)
        if self.screen_feed is not None:
            self.screen_feed.close()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- one hop, delivered like BDApps does -------------------------------------------------
    async def deliver(self, http: aiohttp.ClientSession, body: dict, *, measuring: bool) -> int:
        """Post the callback until it is answered S1000; returns how many deliveries that took
        (0: not acked within the redelivery window)."""
        figures = self.figures if measuring else Figures()  # the peak phase counts nothing
        deadline = time.monotonic() + self.args.redeliver_for
        deliveries = 0
        payload = json.dumps(body).encode()
        while True:
            if deliveries:
                figures.redeliveries += 1
            deliveries += 1
            status: int | str
            async with self.delivering:  # a free connection of the gateway's pool; the wait is not the answer's
                try:
                    async with http.post(self.url, data=payload, headers=_JSON, timeout=_ANSWER_TIMEOUT) as resp:
                        status = resp.status
                        answer = await resp.read()
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    status, answer = "no answer", b""
            figures.answers[status] += 1
            if status == 200 and b'"S1000"' in answer:
                self._backlog_done(body["requestId"], measuring)
                return deliveries
            if status == 503 and self.redis.down_since is not None:
                figures.answers_503_redis_down += 1
                if measuring:
                    self.outage_backlog.add(body["requestId"])
            elif status == 503 and self.outage_backlog:
                figures.answers_503_redis_down += 1  # refused while the outage's backlog drains
            if time.monotonic() > deadline:
                figures.refused_for_good += 1
                self._backlog_done(body["requestId"], measuring)
                return 0
            await asyncio.sleep(self._redelivery_wait(deliveries))

    def _redelivery_wait(self, deliveries: int) -> float:
        if self.args.redelivery == "fixed":
            return 0.5
        step = min(4.0, 0.5 * 2 ** (deliveries - 1))
        return step / 2 + random.uniform(0, step / 2)

    def _backlog_done(self, request_id: str, measuring: bool) -> None:
        if not measuring or request_id not in self.outage_backlog:
            return
        self.outage_backlog.discard(request_id)
        if not self.outage_backlog and self.redis.down_since is None:
            self.figures.recoveries.append(time.monotonic() - self.last_restart_end)

    async def journey(self, http: aiohttp.ClientSession, n: int, *, measuring: bool) -> int:
        """One subscriber's session; returns the hops whose screens arrived."""
        figures = self.figures
        session_id = f"soak-{n}"
        address = f"tel:88018{n % 10**8:08d}"
        queue = self.screens[session_id]
        done = 0
        for hop, message in enumerate(JOURNEY):
            body = {"applicationId": APP_ID, "sessionId": session_id, "requestId": f"{session_id}-{hop}",
                    "ussdOperation": "mo-init" if hop == 0 else "mo-cont", "message": message,
                    "sourceAddress": address, "encoding": "440", "version": "1.0"}
            if measuring:
                figures.hops_sent += 1
            refused_before = self.refusals.get(session_id, 0)
            deliveries = await self.deliver(http, body, measuring=measuring)
            if not deliveries:
                break
            if measuring:
                figures.acked += 1
            try:
                screen = await asyncio.wait_for(queue.get(), self.args.screen_timeout)
            except asyncio.TimeoutError:
                if measuring:
                    figures.lost += 1
                    refused = self.refusals.get(session_id, 0) - refused_before
                    if refused >= 3:
                        figures.lost_refused += 1
                    if len(figures.lost_examples) < 10:
                        figures.lost_examples.append(
                            f"{body['requestId']} (acked at delivery {deliveries}, {refused} /ussd/send refused)")
                break
            done += 1
            if measuring:
                figures.screens += 1
            if screen.get("ussdOperation") == "mt-fin":
                if measuring and hop < len(JOURNEY) - 1:
                    figures.journeys_cut += 1
                    figures.cut_screens[str(screen.get("message", ""))[:60]] += 1
                break
        if measuring:
            figures.journeys += 1
        if queue.empty():
            self.screens.pop(session_id, None)  # a screen arriving later makes a new queue: counted at the end
        return done

    # -- phases ------------------------------------------------------------------------------
    async def measure_peak(self) -> float:
        stop_at = time.monotonic() + self.args.peak_seconds
        screens = 0

        async def user(http: aiohttp.ClientSession) -> None:
            nonlocal screens
            while time.monotonic() < stop_at:
                done = await self.journey(http, next(self.ids), measuring=False)
                screens += done  # not `screens += await ...`: that reads `screens` before the wait

        began = time.monotonic()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.args.users * 2)) as http:
            await asyncio.gather(*(user(http) for _ in range(self.args.users)))
        return screens / (time.monotonic() - began)

    async def restarts(self, seconds: float) -> None:
        count = self.args.restarts
        began = time.monotonic()
        for i in range(count):  # evenly spread over the soak
            await asyncio.sleep(max(0.0, began + (i + 1) * seconds / (count + 1) - time.monotonic()))
            print(f"  [{time.strftime('%H:%M:%S')}] stopping Redis for {self.args.redis_down:g} s", flush=True)
            await asyncio.to_thread(self.redis.stop)
            await asyncio.sleep(self.args.redis_down)
            await asyncio.to_thread(self.redis.start)
            self.last_restart_end = time.monotonic()
            print(f"  [{time.strftime('%H:%M:%S')}] Redis is back", flush=True)

    async def soak(self, rate: float, seconds: float) -> None:
        async with aiohttp.ClientSession() as control:
            await control.post(f"http://127.0.0.1:{self.gateway_port}/_control/faults",
                               json={"endpoint": "/ussd/send", "mode": "body", "chance": self.args.fail_share,
                                     "json": {"statusCode": "E1603", "statusDetail": "Temporary System Error"}})
        arrivals = rate / len(JOURNEY)  # subscribers per second
        tasks: set[asyncio.Task] = set()
        began = time.monotonic()
        restarts = asyncio.create_task(self.restarts(seconds))
        next_report = began + 30
        # A gateway calls from a pool of connections, not one per waiting callback: at most
        # --connections deliveries at once (self.delivering, a FIFO; aiohttp's own connector limit
        # costs more per request the more callbacks wait, and counts the wait in the timeout).
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            k = 0
            while time.monotonic() - began < seconds:
                due = began + k / arrivals
                delay = due - time.monotonic()
                self.figures.generator_lag = max(self.figures.generator_lag, -delay)
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self.journey(http, next(self.ids), measuring=True))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                k += 1
                if time.monotonic() >= next_report:
                    next_report += 30
                    f = self.figures
                    # 5xx so far, and those no outage explains: when the refusals came, not only how many
                    print(f"  [{time.strftime('%H:%M:%S')}] {time.monotonic() - began:5.0f} s: hops {f.hops_sent}, "
                          f"screens {f.screens}, lost {f.lost}, in flight {len(tasks)}, "
                          f"5xx {f.fivexx} (other {f.fivexx - f.answers_503_redis_down}), "
                          f"worker RSS {', '.join(f'{r:.1f}' for r in self.worker_rss())} MB", flush=True)
            await restarts
            if tasks:
                await asyncio.wait(tasks, timeout=self.args.redeliver_for + self.args.screen_timeout + 30)
        await asyncio.sleep(2)  # anything that arrives now was not asked for
        self.figures.extra_screens = sum(q.qsize() for q in self.screens.values())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the soak (default 10)")
    parser.add_argument("--rate", type=float, default=None, help="hops per second (default: half the measured peak)")
    parser.add_argument("--users", type=int, default=32, help="closed-loop subscribers measuring the peak")
    parser.add_argument("--peak-seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=1, help="WEB_CONCURRENCY of the server")
    parser.add_argument("--connections", type=int, default=256,
                        help="connections the delivering gateway keeps to the server (BDApps calls from a pool)")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the server to core 0 and this process to core 1 (the default with "
                             "one worker and taskset on the machine, as in ../shared/bench)")
    parser.add_argument("--fail-share", type=float, default=0.05, help="share of /ussd/send refused with E1603")
    parser.add_argument("--restarts", type=int, default=2, help="Redis restarts during the soak")
    parser.add_argument("--redis-down", type=float, default=3, help="seconds Redis stays down each time")
    parser.add_argument("--redelivery", choices=("backoff", "fixed"), default="backoff",
                        help="refused callbacks: redelivered after 0.5/1/2/4 s with jitter, or every 0.5 s in step")
    parser.add_argument("--redeliver-for", type=float, default=60, help="how long a refused callback is redelivered")
    parser.add_argument("--screen-timeout", type=float, default=20, help="seconds an acked hop's screen may take")
    parser.add_argument("--log-level", default="info", help="ALAP_LOG_LEVEL of the server (production default)")
    args = parser.parse_args()

    args.pin = args.pin and args.workers == 1 and shutil.which("taskset") is not None and os.cpu_count() >= 2
    if args.pin:
        os.sched_setaffinity(0, {1})
    soak = Soak(args)
    await soak.start()
    try:
        rss_boot = soak.worker_rss()
        if args.rate:
            rate = args.rate
            print(f"rate given: {rate:.0f} hops/s", flush=True)
        else:
            peak = await soak.measure_peak()
            rate = peak / 2
            print(f"peak: {peak:.0f} hops/s ({args.users} subscribers, closed loop, {args.peak_seconds:g} s); "
                  f"soak at half: {rate:.0f} hops/s", flush=True)
        rss_start = soak.worker_rss()
        print(f"soak: {args.minutes:g} min, {args.fail_share:.0%} of /ussd/send refused with E1603, "
              f"Redis restarted {args.restarts} times ({args.redis_down:g} s down each)", flush=True)
        began = time.monotonic()
        await soak.soak(rate, args.minutes * 60)
        elapsed = time.monotonic() - began
        rss_end = soak.worker_rss()
    finally:
        log_lines = soak.log_path.read_text(errors="replace").splitlines() if soak.log_path.exists() else []
        await soak.stop()

    f = soak.figures
    fivexx = f.fivexx
    other_5xx = fivexx - f.answers_503_redis_down
    tracebacks = sum("Traceback" in line for line in log_lines)
    print()
    print(f"duration            {elapsed:.0f} s (soak {args.minutes * 60:.0f} s at a target of {rate:.0f} hops/s: "
          f"{f.hops_sent / (args.minutes * 60):.0f} hops/s sent)")
    print(f"generator           {'server on core 0, generator and gateway on core 1' if args.pin else 'not pinned'}; "
          f"behind its schedule by {f.generator_lag:.1f} s at worst"
          f"{' (it saturated: the figures measure the machine, not the server)' if f.generator_lag > 5 else ''}")
    print(f"hops sent           {f.hops_sent}  ({f.journeys} subscribers; {f.redeliveries} redeliveries)")
    print(f"hops acked S1000    {f.acked}")
    print(f"screens delivered   {f.screens}")
    print(f"hops lost           {f.lost}  (acked, no screen in {args.screen_timeout:g} s; must be 0)"
          f"  of which every /ussd/send attempt refused by the gateway: {f.lost_refused}")
    if f.lost_examples:
        print(f"                    e.g. {'; '.join(f.lost_examples)}")
    print(f"never acked         {f.refused_for_good}  (refused for {args.redeliver_for:g} s: BDApps would give up)")
    print(f"answers             {dict(sorted(((str(k), v) for k, v in f.answers.items())))}")
    print(f"recovery            {', '.join(f'{r:.1f} s' for r in f.recoveries) or '-'}  (Redis back -> every callback "
          f"refused during the outage acked; redelivery {args.redelivery})")
    print(f"5xx answers         {fivexx}  (503 E1603 caused by a Redis outage, redelivered: {f.answers_503_redis_down}; "
          f"other 5xx, must be 0: {other_5xx})")
    print(f"journeys            {f.journeys}  (cut short by a final screen: {f.journeys_cut}); "
          f"screens not asked for: {f.extra_screens}")
    for text, n in f.cut_screens.most_common(3):
        print(f"                    cut by {n} x {text!r}")
    print(f"worker RSS          boot {_mb(rss_boot)}, soak start {_mb(rss_start)}, end {_mb(rss_end)}"
          f"{_growth(rss_start, rss_end)}")
    print(f"server log          {len(log_lines)} lines, {tracebacks} tracebacks")
    events = Counter(_event_of(line) for line in log_lines)
    events.pop("ussd_hop", None)  # one per hop: the figures above say more
    print(f"                    events: {', '.join(f'{name} {n}' for name, n in events.most_common(8))}")
    first = next((line for line in log_lines if "Traceback" in line), None)
    if first is not None:  # the log goes with the soak's temporary directory: show one
        print(f"                    first: {first[-700:]}")


async def run_gateway(port: int, socket_path: str) -> None:
    """The fake BDApps gateway (server/sandbox/bdapps.py) in a process of its own, as the real
    one runs on machines of its own: its answers to `/ussd/send` never wait behind the
    generator's work. Every `/ussd/send` is reported to the soak process as one JSON line on a
    UNIX socket: the screen, or that it was refused (the fault the soak adds, `chance`)."""
    _, feed = await asyncio.open_unix_connection(socket_path)
    app = create_bdapps_fake("http://127.0.0.1:9/unused", APP_ID, PASSWORD)

    @web.middleware
    async def report(request: web.Request, handler):
        response = await handler(request)
        if request.path == "/ussd/send" and isinstance(response, web.Response) and response.body is not None:
            session_id = str((await request.json()).get("sessionId"))
            queue = request.app[SCREENS].pop(session_id, None)
            screen = queue.get_nowait() if queue is not None and not queue.empty() else None
            refused = b'"S1000"' not in bytes(response.body)
            feed.write(json.dumps({"sessionId": session_id, "refused": refused, "screen": screen}).encode() + b"\n")
            request.app[FAULTS_KEY].calls.clear()  # the fake records every call: keep it small
        return response

    app.middlewares.append(report)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def _event_of(line: str) -> str:
    """The `event` of a JSON log line (server/logs.py), "other" for anything else."""
    try:
        return str(json.loads(line).get("event", "other"))
    except (ValueError, AttributeError):
        return "other"


def _mb(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values) + " MB" if values else "?"


def _growth(start: list[float], end: list[float]) -> str:
    if not start or not end:
        return ""
    return f" ({(sum(end) - sum(start)) / sum(start):+.1%})"


if __name__ == "__main__":
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    def _interrupted(*_: object) -> None:  # SIGTERM like Ctrl-C: stop the server and Redis it started
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupted)
    if sys.argv[1:2] == ["--gateway"]:
        try:
            asyncio.run(run_gateway(int(sys.argv[2]), sys.argv[3]))
        except KeyboardInterrupt:
            pass
    else:
        asyncio.run(main())
