"""Shared fixtures: a real Redis (throwaway server or ALAP_TEST_REDIS_URL), both store
backends, and the running app wired to the sandbox BDApps gateway over real HTTP."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
import redis as sync_redis

from server.actions import build_registry
from server.app import STORE, create_app
from server.bdapps.routes import USSD_SERVICE
from server.config import REPO_ROOT, Settings, load_settings
from server.engine.actions import ActionRegistry, ActionResult
from server.sandbox.bdapps import CALLBACK, create_bdapps_fake
from server.sandbox.faults import FAULTS_KEY, Fault
from server.store import MemoryStore, Store
from server.store.redis_backend import RedisStore, connect
from server.upstreams import Upstreams

FIXTURES = Path(__file__).parent / "fixtures"
APP_ID = "APP_TEST01"
PASSWORD = "test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the test process dies, so a killed
    pytest (or xdist worker) leaves no redis-server behind. A no-op where prctl is unavailable."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class RedisServer:
    """A throwaway redis-server on a free loopback port, so tests never touch shared data. Under
    pytest-xdist each worker starts its own (its data dir is named after the worker)."""

    def __init__(self, port: int | None = None) -> None:
        self.fixed_port = port
        self.port = port or free_port()
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.dir = tempfile.mkdtemp(prefix=f"alap-redis-{worker}-")
        self.proc: subprocess.Popen | None = None
        self.started = False  # a restart keeps its port (tests stop and start the same server)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        for _ in range(1 if self.fixed_port or self.started else 5):
            if self._start_once():
                self.started = True
                return self
            self.port = free_port()  # another process took the port between free_port() and the bind
        raise RuntimeError("redis-server did not start")

    def _start_once(self) -> bool:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                client = sync_redis.Redis(port=self.port, socket_timeout=0.2)
                # The server answering must be ours (its dir), not another worker's on a reused port.
                if client.ping() and client.config_get("dir").get("dir") == os.path.realpath(self.dir):
                    return True
            except sync_redis.exceptions.RedisError:
                pass
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(5)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("ALAP_TEST_REDIS_URL")
    if url:
        yield url
        return
    if not shutil.which("redis-server"):
        pytest.exit("Redis tests need redis-server on PATH (Debian/Ubuntu: apt install redis-server) "
                    "or ALAP_TEST_REDIS_URL", returncode=3)
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.cleanup()


@asynccontextmanager
async def redis_test_store(url: str) -> AsyncIterator[RedisStore]:
    """A RedisStore under a key prefix of its own, whose keys are deleted afterwards."""
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    # A generous socket timeout: on a loaded machine (xdist workers, other jobs) a redis-server can
    # stall past the production 1 s; the tests that prove the timeout make their own client.
    store = RedisStore(connect(url, socket_timeout=10.0, socket_connect_timeout=5.0), prefix)
    try:
        yield store
    finally:
        keys = [k async for k in store.redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await store.redis.delete(*keys)
        await store.close()


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    async with redis_test_store(redis_url) as store:
        yield store


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    async with redis_test_store(redis_url) as store:
        yield store


def test_settings(**overrides: Any) -> Settings:
    values = {"bdapps_app_id": APP_ID, "bdapps_password": PASSWORD, "bdapps_base_url": "http://127.0.0.1:9",
              "flows_dir": REPO_ROOT / "flows", "templates_dir": REPO_ROOT / "templates",
              "locales_dir": REPO_ROOT / "locales"}
    values.update(overrides)
    return load_settings().model_copy(update=values)


@dataclass
class Stack:
    """The app and the sandbox gateway, both listening on loopback."""

    app_url: str
    gateway_url: str
    app: Any
    gateway: Any
    http: aiohttp.ClientSession

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def service(self):
        return self.app[USSD_SERVICE]

    @property
    def faults(self):
        return self.gateway[FAULTS_KEY]

    def sent(self) -> list[dict[str, Any]]:
        return [c["json"] for c in self.faults.calls_to("/ussd/send")]

    def fail_sends(self, **fault: Any) -> None:
        self.faults.add(Fault(endpoint="/ussd/send", **fault))

    async def post_mo(self, body: Any, *, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else None
        kwargs = {"data": data, "headers": {"Content-Type": "application/json"}} if raw is not None else {"json": body}
        async with self.http.post(f"{self.app_url}/bdapps/ussd", **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def dial(self, code: str = "*213#", address: str = "tel:8801812345678", **extra: Any) -> dict[str, Any]:
        async with self.http.post(f"{self.gateway_url}/phone/dial",
                                  json={"code": code, "address": address, **extra}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def reply(self, screen: dict[str, Any], message: str) -> dict[str, Any]:
        async with self.http.post(f"{self.gateway_url}/phone/reply",
                                  json={"sessionId": screen["sessionId"], "address": screen["address"],
                                        "message": message}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def settle(self) -> None:
        """Wait until no hop is in flight."""
        for _ in range(200):
            if not self.service.tasks:
                return
            await asyncio.sleep(0.01)


async def start_stack(aiohttp_server, *, store: Store | None = None, registry: ActionRegistry | None = None,
                      **settings: Any) -> Stack:
    gateway = create_bdapps_fake("http://127.0.0.1:9/unset", APP_ID, PASSWORD)
    gateway_server = await aiohttp_server(gateway)
    gateway_url = str(gateway_server.make_url("")).rstrip("/")
    app = create_app(test_settings(bdapps_base_url=gateway_url, **settings), store=store or MemoryStore(),
                     registry=registry)
    app_server = await aiohttp_server(app)
    app_url = str(app_server.make_url("")).rstrip("/")
    gateway[CALLBACK].url = f"{app_url}/bdapps/ussd"
    http = aiohttp.ClientSession()
    return Stack(app_url, gateway_url, app, gateway, http)


@pytest.fixture
async def stack(aiohttp_server, store: Store) -> AsyncIterator[Stack]:
    s = await start_stack(aiohttp_server, store=store)
    yield s
    await s.http.close()


async def _slow(ctx):
    await asyncio.sleep(5)
    return ActionResult()


async def _broken(ctx):
    raise RuntimeError("upstream exploded")


async def _vip(ctx):
    return ActionResult(vars={"vip": "yes"})


async def _increment(ctx):
    await asyncio.sleep(0.005)  # widen the window in which an unlocked read-modify-write would race
    return ActionResult(vars={"count": int(ctx.vars.get("count", 0)) + 1})


def fixture_registry() -> ActionRegistry:
    """The built-in actions plus the canned ones the flows in tests/fixtures/flows call."""
    registry = build_registry(Upstreams.from_settings(test_settings()))
    registry.register("test.slow", _slow)
    registry.register("test.broken", _broken)
    registry.register("test.vip", _vip)
    registry.register("test.increment", _increment)
    return registry



# Words in a test module's source that mean its tests start real processes (`alap ...`,
# redis-server clusters, Chromium) or signal them, and so take seconds each; most others take
# milliseconds. Only the order of the run depends on this list.
_PROCESS_WORDS = ("subprocess", "signal.", "ALAP", "alap_dev", "run_cli", "playwright", "chromium")
_module_takes_seconds: dict[str, bool] = {}
_module_shares_fixture: dict[str, bool] = {}


def _shares_module_fixture(item: pytest.Item) -> bool:
    path = str(item.path)
    if path not in _module_shares_fixture:
        _module_shares_fixture[path] = 'scope="module"' in Path(path).read_text(encoding="utf-8")
    return _module_shares_fixture[path]


def _takes_seconds(item: pytest.Item) -> bool:
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        return True
    path = str(item.path)
    if path not in _module_takes_seconds:
        source = Path(path).read_text(encoding="utf-8")
        _module_takes_seconds[path] = any(word in source for word in _PROCESS_WORDS)
    return _module_takes_seconds[path]


# Seconds per file, and for a few single tests, from `pytest -n auto` with the per-test times
# summed by file (this project's 2-core reference machine; files under 3 s are left out). A
# file's seconds are shared equally by its tests not listed on their own. Only the order of the
# run depends on this table: a file missing from it counts 1 s per test when it starts processes
# (above), a few milliseconds otherwise.
_SECONDS = {
    "tests/broadcast/test_scheduled_by_worker.py::test_a_worker_killed_mid_broadcast_is_continued_by_the_next": 24,
    "tests/store/test_recharge_ledger.py::test_alap_ledger_lists_shows_and_resolves": 8,
    "tests/broadcast/test_scheduled_by_worker.py": 35,
    "tests/broadcast/test_crash_resume.py": 20,
    "tests/admin/test_console_browser.py": 19,
    "tests/recharge/test_worker_crash_and_resume.py": 19,
    "tests/recharge/test_money_conservation_property.py": 17,
    "tests/recharge/test_saga_failure_points.py": 16,
    "tests/app/test_command_line.py": 15,
    "tests/store/test_recharge_ledger.py": 13,
    "tests/broadcast/test_status_and_cancel_commands.py": 13,
    "tests/store/test_redis_cluster.py": 11,
    "tests/app/test_scale_out.py": 11,
    "tests/actions/test_parcel_balance_offers_flows.py": 10,
    "tests/sandbox/test_web_simulator.py": 9,
    "tests/broadcast/test_unknown_and_cancel.py": 4,
    "tests/tooling/test_project_scaffold.py": 8,
    "tests/app/test_graceful_shutdown.py": 8,
    "tests/render/test_broken_catalogs_stop_serve.py": 7,
    "tests/bdapps/test_ussd_callbacks.py": 7,
    "tests/tooling/test_alap_check.py": 7,
    "tests/app/test_log_redaction.py": 7,
    "tests/app/test_rolling_deploy.py": 6,
    "tests/broadcast/test_ussd_broadcast.py": 3,
    "tests/store/test_funnel_counters.py": 6,
    "tests/app/test_dev_hot_reload.py": 5,
    "tests/bdapps/test_sms_keywords.py": 5,
    "tests/messaging/test_routing_failover_and_reports.py": 5,
    "tests/bdapps/test_caller_allow_list.py": 5,
    "tests/bdapps/test_hop_delivery.py": 4,
    "tests/bdapps/test_turn_deadline.py": 4,
    "tests/broadcast/test_tel_all_and_dry_run.py": 4,
    "tests/app/test_flows_command.py": 4,
    "tests/messaging/test_shared_throttle.py": 4,
    "tests/tooling/test_conversation_tests.py": 4,
    "tests/store/test_redis_sweep.py": 4,
    "tests/store/test_store_contract.py": 3,
    "tests/app/test_json_logs.py": 3,
    "tests/broadcast/test_recipients_file.py": 3,
    "tests/recharge/test_crash_and_lease_windows.py": 3,
}


def _estimates(items: list[pytest.Item]) -> dict[str, float]:
    """Seconds per test id, from _SECONDS (a file's time shared by its unlisted tests)."""
    by_file: dict[str, list[str]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item.nodeid)
    estimates: dict[str, float] = {}
    for file, ids in by_file.items():
        own = {i: _SECONDS[i.split("[", 1)[0]] for i in ids if i.split("[", 1)[0] in _SECONDS}
        rest = [i for i in ids if i not in own]
        share = max(0.0, _SECONDS[file] - sum(own.values())) / len(rest) if file in _SECONDS and rest else None
        for i in rest:
            estimates[i] = share if share is not None else 0.0
        estimates.update(own)
    return estimates


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deal the tests out so that every xdist worker starts with its share of the long ones.

    `--dist worksteal` first hands each of the N workers one contiguous slice of this order
    (the first len/N tests to one, and so on: xdist/scheduler/worksteal.py), and an idle worker
    later steals from the end of a busy one's queue. So the order is N slices of those sizes,
    the tests spread over them greedily, longest first (each to the slice with the fewest
    seconds so far), each slice longest first: the run ends on short tests that can be stolen,
    not on one worker working through every long test while the others idle. A module with a
    module-scoped fixture (a browser, an `alap dev`) stays in one piece, so that it is set up
    once. Without xdist (N = 1) this is simply longest first. The order is the same in every
    worker, as xdist requires."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    estimates = _estimates(items)
    units: dict[str, list[pytest.Item]] = {}  # a test, or a whole module that shares a fixture
    for item in items:
        key = str(item.path) if _shares_module_fixture(item) else item.nodeid
        units.setdefault(key, []).append(item)

    def seconds(unit: list[pytest.Item]) -> float:
        return sum(estimates[item.nodeid] or (1.0 if _takes_seconds(item) else 0.01) for item in unit)

    sizes, left = [], len(items)
    for i in range(workers):  # as xdist splits: len(pending) // nodes_remaining
        sizes.append(left // (workers - i))
        left -= sizes[-1]
    slices: list[list[pytest.Item]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for unit in sorted(units.values(), key=seconds, reverse=True):  # stable: collection order among equals
        room = [i for i in range(workers) if len(slices[i]) + len(unit) <= sizes[i]] or range(workers)
        i = min(room, key=lambda i: loads[i])
        slices[i].extend(unit)
        loads[i] += seconds(unit)
    items[:] = [item for part in slices for item in part]


def pytest_configure(config: pytest.Config) -> None:
    """Compile server/ to bytecode once, in the controller, before the workers start. Python
    then reads the .pyc files instead of compiling every module again in each of the ~150
    `alap` processes the suite starts and in each xdist worker: where PYTHONDONTWRITEBYTECODE
    is set (as on CI) no process would ever write them. compileall writes them regardless of
    that variable, and only for sources newer than their .pyc."""
    if hasattr(config, "workerinput"):
        return
    import compileall

    compileall.compile_dir(REPO_ROOT / "server", quiet=2)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: two workers per core (at least 2). Most of a worker's time is spent waiting
    (real processes starting, product timers such as a 3 s upstream timeout or a 5 s session
    lock, Chromium), so a core runs one worker's code while another waits. Measured on 2 cores:
    4 workers 104 s, 3 workers 114 s (each worker's start-up, collecting every test, costs about
    5 s of CPU). PYTEST_XDIST_AUTO_NUM_WORKERS still sets the number."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(2, cores * 2)
