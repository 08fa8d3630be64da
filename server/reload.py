"""Hot reload for `alap dev`: flows, templates and catalogs are watched (mtime polling, no
extra dependency); a good edit replaces the engine for the next hop (sessions already running stay on
the flow versions they started on: server/flow_publishing.py), a bad edit prints its problems
and keeps the last good version."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .engine.engine import Engine
from .engine.errors import FlowErrors

POLL_SECONDS = 0.5


def snapshot(folders: list[Path]) -> dict[Path, float]:
    files: dict[Path, float] = {}
    for folder in folders:
        if folder.exists():
            for path in folder.rglob("*"):
                if path.is_file() and path.suffix in (".yaml", ".yml", ".j2", ".html", ".txt", ".po"):
                    files[path] = path.stat().st_mtime
    return files


def watch(folders: list[Path], rebuild: Callable[[], Engine], install: Callable[[Engine], Awaitable[None]],
          out=sys.stdout) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that polls `folders` and swaps the engine on a good change."""

    async def poll() -> None:
        seen = snapshot(folders)
        while True:
            await asyncio.sleep(POLL_SECONDS)
            now = snapshot(folders)
            if now == seen:
                continue
            seen = now
            try:
                # In a thread: `alap check` behind the rebuild takes seconds; hops go on meanwhile.
                engine = await asyncio.to_thread(rebuild)
            except FlowErrors as exc:
                print(f"alap dev: reload failed, keeping the last good flows:\n{exc}", file=out, flush=True)
                continue
            await install(engine)
            print(f"alap dev: reloaded {len(engine.flows)} flow(s)", file=out, flush=True)

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(poll())
        yield
        task.cancel()

    return context
