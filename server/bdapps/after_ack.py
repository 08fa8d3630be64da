"""What the BDApps services do after the HTTP answer (the ack), shared by USSD, SMS and push:

- `AckedService`: what each of them runs a turn with (engine, store, session TTL, default
  language), and `spawn`: the rest of the work runs as a task kept in the service's set, which
  the shutdown drains (app.py `_drain_hops`) so an acknowledged hop is never dropped;
- `apply_profile_changes`: the profile changes a turn asks for (language, SMS opt-out), once
  its session is saved.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Coroutine

import structlog

from ..engine.engine import Engine, Reply
from ..store import Store, StoreUnavailable

log = structlog.get_logger("alap.profiles")


@dataclass(kw_only=True)
class AckedService:
    """The part the USSD, SMS and push services share (bdapps/ussd.py, sms.py, push.py)."""

    engine: Engine
    store: Store
    session_ttl: int
    default_language: str
    tasks: set[asyncio.Task] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


async def apply_profile_changes(store: Store, key: str, reply: Reply) -> None:
    """Called after the session was saved: a failure here is logged, never turned into an
    error screen (the subscriber's step has already happened)."""
    if reply.language is None and reply.opted_out is None:
        return
    try:  # only the changed fields: another channel may be changing the others right now
        await store.update_profile(key, lang=reply.language, opted_out=reply.opted_out)
    except StoreUnavailable as exc:
        log.error("profile_update_failed", address=key, error=str(exc))
