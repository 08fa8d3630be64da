"""A deploy under live sessions, over real HTTP: two servers (apps in this process, each with
its own flows) on one real Redis, or one `alap dev`-style app whose flows are hot-reloaded on the
memory store. A live session keeps the meaning of the version it started on; new sessions get
the new one; a version that cannot be had ends the session with the "session ended" screen and a
log line saying why."""
from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import pytest
import structlog

from server.actions import build_registry
from server.app import SETTINGS, UPSTREAMS, build_engine, install_engine
from server.config import REPO_ROOT
from server.store import MemoryStore
from server.store.redis_backend import RedisStore, connect
from server.upstreams import Upstreams

from ..conftest import Stack, fixture_registry, start_stack

ADDRESS = "tel:8801812345678"


def flows_v1(tmp_path: Path) -> Path:
    folder = tmp_path / "v1"
    shutil.copytree(REPO_ROOT / "flows", folder)
    return folder


def flows_v2(tmp_path: Path) -> Path:
    """The demo's first two options swapped: "1" now splits a bill."""
    folder = tmp_path / "v2"
    shutil.copytree(REPO_ROOT / "flows", folder)
    demo = folder / "demo.yaml"
    text = demo.read_text()
    first = '      - label: "Find a number\'s operator"\n        next: ask_number\n'
    second = '      - label: "Split a bill"\n        next: ask_total\n'
    assert first + second in text
    demo.write_text(text.replace(first + second, second + first))
    return folder


async def two_servers(aiohttp_server, redis_url: str, old: Path, new: Path, **settings):
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    stores = [RedisStore(connect(redis_url), prefix) for _ in range(2)]
    stacks = [await start_stack(aiohttp_server, store=store, flows_dir=folder, default_language="en", **settings)
              for store, folder in zip(stores, (old, new))]
    return stacks


async def close(stacks: list[Stack]) -> None:
    store = stacks[0].store
    keys = [k async for k in store.redis.scan_iter(match=f"{store.prefix}*")]
    if keys:
        await store.redis.delete(*keys)
    for stack in stacks:
        await stack.http.close()


async def hop(stack: Stack, session_id: str, n: int, message: str, address: str = ADDRESS) -> dict:
    """Post one callback to this server and return the screen it sent."""
    before = len(stack.sent())
    status, _ = await stack.post_mo({
        "applicationId": "APP_TEST01", "sessionId": session_id, "requestId": f"{session_id}-{n}",
        "ussdOperation": "mo-init" if n == 0 else "mo-cont", "message": message, "sourceAddress": address,
        "encoding": "440", "version": "1.0"})
    assert status == 200
    for _ in range(500):
        await stack.settle()
        if len(stack.sent()) > before:
            return stack.sent()[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("no screen sent")


async def test_a_deploy_that_swaps_options_keeps_the_old_meaning_for_live_sessions(aiohttp_server, redis_url,
                                                                                  tmp_path):
    old, new = await two_servers(aiohttp_server, redis_url, flows_v1(tmp_path), flows_v2(tmp_path))
    try:
        assert old.app[SETTINGS].flows_dir != new.app[SETTINGS].flows_dir
        live = f"live-{uuid.uuid4().hex[:6]}"
        assert (await hop(old, live, 0, "*213#"))["message"].startswith("Welcome to Alap\n1. Find a number's operator")
        # the deploy: the next hop of that session reaches the new server
        after = await hop(new, live, 1, "1")
        assert after["message"].startswith("Enter a mobile number"), after  # the old meaning of "1"
        result = await hop(new, live, 2, "01612345678")
        assert result["message"].startswith("01612345678 is Airtel by its prefix.")
        # a new session on the new server gets the new version
        fresh, other = f"new-{uuid.uuid4().hex[:6]}", "tel:8801700000003"
        assert (await hop(new, fresh, 0, "*213#", other))["message"].startswith("Welcome to Alap\n1. Split a bill")
        # and its next hop on the old server keeps the new meaning: a rolling deploy in reverse
        assert (await hop(old, fresh, 1, "1", other))["message"].startswith("Enter the bill amount")
        assert (await hop(new, fresh, 2, "1250", other))["message"].startswith("How many people")
    finally:
        await close([old, new])


async def test_a_missing_version_ends_the_session_cleanly_and_says_why(aiohttp_server, redis_url, tmp_path):
    old, new = await two_servers(aiohttp_server, redis_url, flows_v1(tmp_path), flows_v2(tmp_path))
    try:
        sid = f"lost-{uuid.uuid4().hex[:6]}"
        await hop(old, sid, 0, "*213#")
        version = old.service.engine.versions.current["demo"].version
        store = old.store
        assert await store.versions.fetch("demo", version) is not None  # published at start-up
        await store.redis.delete(f"{store.prefix}fv:demo:{version}")  # the store lost it
        with structlog.testing.capture_logs() as logs:
            ended = await hop(new, sid, 1, "1")
        assert ended["message"] == "Your session has ended. Please dial again."
        assert ended["ussdOperation"] == "mt-fin"
        lost = [e for e in logs if e["event"] == "session_version_unavailable"]
        assert lost and lost[0]["version"] == version and "not in the store" in lost[0]["reason"]
        assert await new.store.get_session(sid) is None
    finally:
        await close([old, new])


VIP_V1 = """
flow: vip
code: "*302#"
default: true
start: menu
states:
  menu:
    kind: menu
    text: "Club"
    options:
      - {label: "Check status", next: check}
  check:
    kind: action
    action: test.vip
    outcomes: {ok: status}
    fallback: status
  status: {kind: end, text: "VIP: {{ vip }}"}
"""

VIP_V2 = """
flow: vip
code: "*302#"
default: true
start: menu
states:
  menu:
    kind: menu
    text: "Club (new)"
    options:
      - {label: "Status", next: status}
  status: {kind: end, text: "Closed"}
"""


async def test_a_version_naming_a_removed_action_ends_cleanly(aiohttp_server, redis_url, tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1" / "vip.yaml").write_text(VIP_V1)
    (tmp_path / "v2" / "vip.yaml").write_text(VIP_V2)
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    old = await start_stack(aiohttp_server, store=RedisStore(connect(redis_url), prefix),
                            registry=fixture_registry(), flows_dir=tmp_path / "v1", default_language="en")
    # the new release no longer has the action `test.vip`
    new = await start_stack(aiohttp_server, store=RedisStore(connect(redis_url), prefix),
                            registry=build_registry(Upstreams.from_settings(old.app[SETTINGS])),
                            flows_dir=tmp_path / "v2", default_language="en")
    try:
        sid = f"act-{uuid.uuid4().hex[:6]}"
        assert (await hop(old, sid, 0, "*302#"))["message"] == "Club\n1. Check status"
        with structlog.testing.capture_logs() as logs:
            ended = await hop(new, sid, 1, "1")
        assert ended["message"] == "Your session has ended. Please dial again." and ended["ussdOperation"] == "mt-fin"
        lost = [e for e in logs if e["event"] == "session_version_unavailable"]
        assert lost and "unknown action 'test.vip'" in lost[0]["reason"]
    finally:
        await close([old, new])


async def test_hot_reload_on_the_memory_store_pins_live_sessions(aiohttp_server, tmp_path):
    folder = flows_v1(tmp_path)
    stack = await start_stack(aiohttp_server, store=MemoryStore(), flows_dir=folder, default_language="en")
    try:
        live = await stack.dial("*213#", ADDRESS)
        assert live["message"].startswith("Welcome to Alap\n1. Find a number's operator")
        shutil.copy(flows_v2(tmp_path) / "demo.yaml", folder / "demo.yaml")  # the author saves an edit
        settings = stack.app[SETTINGS]
        # what `alap dev`'s watcher does on a good edit
        await install_engine(stack.app, build_engine(settings, upstreams=stack.app[UPSTREAMS]))
        assert (await stack.reply(live, "1"))["message"].startswith("Enter a mobile number")  # old meaning
        fresh = await stack.dial("*213#", "tel:8801700000002")
        assert fresh["message"].startswith("Welcome to Alap\n1. Split a bill")
        assert (await stack.reply(fresh, "1"))["message"].startswith("Enter the bill amount")
        # the replaced version is kept in memory for as long as sessions may use it
        versions = await stack.store.versions.live()
        assert len([key for key in versions if key[0] == "demo"]) == 2
        assert all(ttl > 180 + 120 for key, ttl in versions.items() if key[0] == "demo")
    finally:
        await stack.http.close()


async def test_a_call_dropped_before_a_deploy_continues_on_its_version_after_it(aiohttp_server, redis_url, tmp_path):
    old, new = await two_servers(aiohttp_server, redis_url, flows_v1(tmp_path), flows_v2(tmp_path))
    try:
        dropped = f"drop-{uuid.uuid4().hex[:6]}"
        await hop(old, dropped, 0, "*213#")
        at_total = await hop(old, dropped, 1, "2")  # the call drops on the bill amount screen
        redial = f"redial-{uuid.uuid4().hex[:6]}"
        offer = await hop(new, redial, 0, "*213#")  # the re-dial reaches the new release
        assert offer["message"] == "1. Continue where you left off\n2. Start again"
        assert (await hop(new, redial, 1, "1"))["message"] == at_total["message"]
        menu = await hop(new, redial, 2, "0")  # back to the old version's main menu
        assert menu["message"].startswith("Welcome to Alap\n1. Find a number's operator")
        assert (await hop(new, redial, 3, "1"))["message"].startswith("Enter a mobile number")  # old meaning
    finally:
        await close([old, new])
