"""The flow versions one engine can run: the current version of every flow (loaded from the
folders) and older versions that live sessions are pinned to, compiled once from the store
and cached.

A session's `ver` maps each flow it entered to a content id (engine/versions.py). A hop whose
pins are all current costs nothing extra; a pin this process does not hold is fetched through
`fetch` (the store, wired in server/app.py: the engine knows neither HTTP nor Redis).
"""
from __future__ import annotations

import time
from typing import Awaitable, Callable, Iterable

import structlog

from ..render.environment import Renderer
from .actions import ActionRegistry
from .machine import FlowMachine
from .model import Flow
from .session import Session
from .versions import FlowRuntime, VersionUnavailable, compile_source, decode_source, source_of

log = structlog.get_logger("alap.versions")

Fetch = Callable[[str, str], Awaitable[bytes | None]]


class FlowVersions:
    def __init__(self, flows: Iterable[Flow], renderer: Renderer, registry: ActionRegistry) -> None:
        self.renderer = renderer
        self.registry = registry
        self.current: dict[str, FlowRuntime] = {}
        for flow in flows:
            source = source_of(flow, renderer)
            self.current[flow.name] = FlowRuntime(flow, FlowMachine(flow, renderer.evaluate), renderer,
                                                  source, source.id)
        self.older: dict[tuple[str, str], FlowRuntime] = {}
        self.last_used: dict[tuple[str, str], float] = {}  # older versions: when a hop last ran one
        self.fetch: Fetch | None = None

    async def load(self, pins: dict[str, str]) -> None:
        """Make every pinned version runnable (fetch and compile what this process lacks)."""
        for name, version in pins.items():
            current = self.current.get(name)
            if current is not None and current.version == version:
                continue
            key = (name, version)
            self.last_used[key] = time.monotonic()
            if key in self.older:
                continue
            if self.fetch is None:
                raise VersionUnavailable(f"flow {name} version {version} is not held and there is no store")
            data = await self.fetch(name, version)
            if data is None:
                raise VersionUnavailable(f"flow {name} version {version} is not in the store")
            source = decode_source(data)
            if source.flow != name or source.id != version:
                raise VersionUnavailable(f"stored flow {name} version {version} does not match its id")
            self.older[key] = compile_source(source, self.registry, self.renderer)
            log.info("flow_version_loaded", flow=name, version=version)

    def get(self, session: Session, name: str) -> FlowRuntime:
        """The version of `name` this session runs; a flow it enters for the first time is
        pinned to its current version. Call `load(session.ver)` first."""
        version = session.ver.get(name)
        current = self.current.get(name)
        if version is None or (current is not None and current.version == version):
            if current is None:
                raise VersionUnavailable(f"flow {name} no longer exists")
            session.ver[name] = current.version
            return current
        runtime = self.older.get((name, version))
        if runtime is None:
            raise VersionUnavailable(f"flow {name} version {version} was not loaded")
        return runtime

    def live(self, within: float) -> list[FlowRuntime]:
        """The current versions and the older ones a hop ran in the last `within` seconds: the
        versions this process needs the store to keep. Older ones unused for longer are dropped
        from the cache."""
        now = time.monotonic()
        for key, used in list(self.last_used.items()):
            if now - used > within:
                self.last_used.pop(key, None)
                self.older.pop(key, None)
        return [*self.current.values(), *(self.older[k] for k in self.last_used if k in self.older)]
