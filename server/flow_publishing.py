"""Wiring between the engine's flow versions and the store: every server publishes the versions
it runs and keeps them alive; the engine fetches the ones it lacks from there.

A version's TTL is a session's lifetime plus the resume window plus a margin longer than the
keep-alive period (server/app.py runs `keep` every MESSAGING_JOB_SECONDS), so after the last
process that runs a version stops or reloads, the version outlives every session pinned to it.
"""
from __future__ import annotations

import structlog

from .config import Settings
from .engine.engine import Engine
from .engine.versions import FlowRuntime, encode_source
from .store import Store, StoreUnavailable

log = structlog.get_logger("alap.versions")

MARGIN_SECONDS = 60


def version_ttl(settings: Settings) -> int:
    return settings.session_ttl + settings.resume_window + MARGIN_SECONDS


def attach(engine: Engine, store: Store) -> None:
    """Let the engine fetch the versions it does not hold from the store."""
    engine.versions.fetch = store.versions.fetch


async def _publish(store: Store, runtimes: list[FlowRuntime], ttl: int) -> None:
    for runtime in runtimes:
        await store.versions.publish(runtime.flow.name, runtime.version, encode_source(runtime.source), ttl)


async def publish(engine: Engine, store: Store, ttl: int) -> None:
    """Publish the current version of every flow (at start-up and after a hot reload). A store
    that is down is not fatal: `keep` publishes again once it is back."""
    try:
        await _publish(store, list(engine.versions.current.values()), ttl)
    except StoreUnavailable as exc:
        log.warning("flow_versions_not_published", error=str(exc))
        return
    log.info("flow_versions_published", versions={n: rt.version for n, rt in engine.versions.current.items()})


async def keep(engine: Engine, store: Store, ttl: int) -> None:
    """Extend the versions this process runs (current ones and older ones live sessions used
    lately); publish again any the store lost."""
    runtimes = engine.versions.live(within=ttl)
    missing = set(await store.versions.keep([(rt.flow.name, rt.version) for rt in runtimes], ttl))
    if missing:
        await _publish(store, [rt for rt in runtimes if (rt.flow.name, rt.version) in missing], ttl)
