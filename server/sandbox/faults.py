"""Per-test fault injection shared by every sandbox fake.

A test (or `alap dev` user) tells a fake what to do with the next calls of one endpoint:

    POST /_control/faults  {"endpoint": "/track", "mode": "delay", "seconds": 5, "times": 1}
    POST /_control/faults  {"endpoint": "*", "mode": "status", "status": 503}
    POST /_control/faults  {"endpoint": "/track", "mode": "malformed"}
    POST /_control/faults  {"endpoint": "/track", "mode": "body", "json": {...}}
    DELETE /_control/faults
    GET  /_control/calls    -> every call received: [{"endpoint", "json"|"form"|"query"}...]
    DELETE /_control/calls

`times` (default: unlimited) limits how many calls the fault applies to; `chance` (0..1,
default 1) makes it apply to that share of the calls at random (a gateway failing 5% of
sends: `"chance": 0.05`). `seconds` also delays the other modes (a slow refusal). In-process
tests can use `FaultBook` directly instead of the HTTP control routes.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web


@dataclass
class Fault:
    endpoint: str
    mode: str  # delay | status | malformed | body | drop
    seconds: float = 0.0
    status: int = 500
    json: Any = None
    times: int | None = None
    chance: float = 1.0


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear(self) -> None:
        self.faults.clear()

    def take(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint in (endpoint, "*"):
                if fault.chance < 1.0 and random.random() >= fault.chance:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def calls_to(self, endpoint: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["endpoint"] == endpoint]


FAULTS_KEY = web.AppKey("faults", FaultBook)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def apply_fault(book: FaultBook, endpoint: str) -> web.StreamResponse | None:
    """Run the fault for this endpoint, if any. Returns a response to send instead, or None
    to let the fake answer normally (after a delay fault)."""
    fault = book.take(endpoint)
    if fault is None:
        return None
    if fault.seconds > 0:
        await asyncio.sleep(fault.seconds)
    if fault.mode == "delay":
        return None
    if fault.mode == "status":
        return web.json_response({"error": "injected"}, status=fault.status)
    if fault.mode == "malformed":
        return web.Response(text="<html><body>502 Bad Gateway</body></html>", status=200,
                            content_type="text/html")
    if fault.mode == "body":
        return web.json_response(fault.json)
    if fault.mode == "drop":
        raise ConnectionResetError("injected drop")
    raise ValueError(f"unknown fault mode {fault.mode!r}")


async def _add_fault(request: web.Request) -> web.Response:
    data = await request.json()
    request.app[FAULTS_KEY].add(Fault(**data))
    return web.json_response({"ok": True})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].clear()
    return web.json_response({"ok": True})


async def _list_calls(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAULTS_KEY].calls)


async def _clear_calls(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].calls.clear()
    return web.json_response({"ok": True})


def add_control_routes(app: web.Application) -> FaultBook:
    """Give a fake its FaultBook and the /_control routes; returns the book."""
    book = FaultBook()
    app[FAULTS_KEY] = book
    app.router.add_post("/_control/faults", _add_fault)
    app.router.add_delete("/_control/faults", _clear_faults)
    app.router.add_get("/_control/calls", _list_calls)
    app.router.add_delete("/_control/calls", _clear_calls)
    return book


async def record_call(request: web.Request, endpoint: str) -> dict[str, Any]:
    """Record a call (JSON, form or query) in the app's FaultBook and return what was parsed."""
    entry: dict[str, Any] = {"endpoint": endpoint, "query": dict(request.query)}
    if request.can_read_body:
        raw = await request.read()
        ctype = request.content_type
        if ctype == "application/json":
            try:
                import json as _json
                entry["json"] = _json.loads(raw or b"null")
            except ValueError:
                entry["raw"] = raw.decode("utf-8", "replace")
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            entry["form"] = dict(await request.post())
        else:
            entry["raw"] = raw.decode("utf-8", "replace")
    request.app[FAULTS_KEY].calls.append(entry)
    return entry
