"""The app over real HTTP on a real Redis reached through a ReplyDelayProxy, with the hop test
flow (tests/bdapps/hop_flows) whose actions the test controls."""
from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlparse

from server.engine.actions import ActionRegistry, ActionResult
from server.store.redis_backend import RedisStore, connect

from ..conftest import APP_ID, Stack, fixture_registry, start_stack
from .tcp_proxy import ReplyDelayProxy

HOP_FLOWS = Path(__file__).parent.parent / "bdapps" / "hop_flows"
ACK = {"statusCode": "S1000", "statusDetail": "Success"}


class Gate:
    """`test.gate` waits until the test opens the gate; `entered` tells the test it is waiting."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def action(self, ctx) -> ActionResult:
        self.entered.set()
        await self.opened.wait()
        return ActionResult()


async def _sleep(ctx) -> ActionResult:
    await asyncio.sleep(float(ctx.args["seconds"]))
    return ActionResult()


def hop_registry(gate: Gate) -> ActionRegistry:
    registry = fixture_registry()
    registry.register("test.gate", gate.action)
    registry.register("test.sleep", _sleep)
    return registry


def mo(session_id: str, request_id: str, operation: str, message: str,
       address: str = "tel:8801812345678") -> dict[str, Any]:
    return {"applicationId": APP_ID, "sessionId": session_id, "requestId": request_id, "ussdOperation": operation,
            "message": message, "sourceAddress": address, "encoding": "440", "version": "1.0"}


async def wait_sent(stack: Stack, count: int, timeout: float = 15.0) -> list[dict]:
    """The screens sent so far, once at least `count` went out and no hop is in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(stack.sent()) < count and loop.time() < deadline:
        await asyncio.sleep(0.02)
    while stack.service.tasks and loop.time() < deadline:
        await asyncio.sleep(0.02)
    return stack.sent()


@asynccontextmanager
async def proxied_stack(aiohttp_server, redis_url: str, gate: Gate | None = None,
                        **settings: Any) -> AsyncIterator[tuple[Stack, ReplyDelayProxy, RedisStore]]:
    """(stack, proxy, direct): the app's store talks to Redis through `proxy`; `direct` is a
    store on the same keys that bypasses it (for the test's own reads and writes)."""
    target = urlparse(redis_url)
    proxy = await ReplyDelayProxy.start(target.hostname or "127.0.0.1", target.port or 6379)
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    userinfo = target.netloc.rpartition("@")[0]  # a password of ALAP_TEST_REDIS_URL goes along
    through = target._replace(netloc=f"{userinfo + '@' if userinfo else ''}127.0.0.1:{proxy.port}").geturl()
    store = RedisStore(connect(through), prefix)
    direct = RedisStore(connect(redis_url), prefix)
    if gate is not None:
        settings = {"flows_dir": HOP_FLOWS, "registry": hop_registry(gate), **settings}
    stack = await start_stack(aiohttp_server, store=store, **settings)
    try:
        yield stack, proxy, direct
    finally:
        await stack.http.close()
        keys = [k async for k in direct.redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await direct.redis.delete(*keys)
        await direct.close()
        await proxy.close()
