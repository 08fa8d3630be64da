"""The `alap worker` side of broadcasts: every few seconds, run what is due.

Due: a scheduled broadcast whose `--at` has come, a PARKED one whose time has come (per-day
limit, or a worker that stopped mid-way), and a RUNNING one whose lease ran out (the process
sending it died: the command line or another worker). One broadcast at a time per worker
process; several workers share the work through the lease. On SIGTERM the running broadcast
is given back PARKED with no delay, so the next worker continues it at once.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from server.store.base import StoreUnavailable

from .context import BroadcastContext
from .runner import Busy
from .store import PARKED

log = structlog.get_logger("alap.broadcast")

POLL_SECONDS = 2.0


class BroadcastScheduler:
    def __init__(self, context: BroadcastContext, *, poll: float = POLL_SECONDS, owner: str | None = None) -> None:
        self.context = context
        self.poll = poll
        self.owner = owner
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick(stop)
            except StoreUnavailable as exc:
                log.error("broadcast_scheduler_store_unavailable", detail=str(exc))
            except Exception:
                log.exception("broadcast_scheduler_failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll)

    async def tick(self, stop: asyncio.Event | None = None) -> int:
        ran = 0
        for name in await self.context.bstore.due(time.time()):
            if stop is not None and stop.is_set():
                break
            b = await self.context.bstore.get(name)
            if b is None:
                continue
            runner = self.context.runner(b.spec, owner=self.owner, interrupted_state=PARKED,
                                         batch=default_batch(self.context.settings))
            log.info("broadcast_started_by_worker", broadcast=name, state=b.state)
            task = asyncio.ensure_future(runner.run(name))
            waiter = asyncio.ensure_future(stop.wait()) if stop is not None else None
            try:
                done, _ = await asyncio.wait({task, *([waiter] if waiter else [])},
                                             return_when=asyncio.FIRST_COMPLETED)
                if task not in done:  # stopping: the runner gives the broadcast back PARKED
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    break
                result = task.result()
                log.info("broadcast_run_by_worker", broadcast=name, state=result.state, detail=result.detail)
                ran += 1
                self.runs += 1
            except Busy:
                continue
            finally:
                if waiter is not None:
                    waiter.cancel()
        return ran


def default_batch(settings: Any) -> int:
    """About one request a second at the configured rate, at most 100 recipients a request."""
    from .runner import DEFAULT_BATCH

    rate = float(getattr(settings, "sms_rate", 0) or 0)
    return DEFAULT_BATCH if rate <= 0 else max(1, min(DEFAULT_BATCH, int(rate)))
