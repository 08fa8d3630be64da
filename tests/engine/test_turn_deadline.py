"""The engine takes the turn's deadline from its caller (it knows no lock, no Redis): an action
reached when no time is left takes its fallback at once, and one with little time left gets
only that. No clocks are measured here: the deadlines are already past or far away."""
from __future__ import annotations

import time

from server.config import REPO_ROOT
from server.engine.engine import Engine, Subscriber
from server.engine.loader import load_flow_dir
from server.render.environment import Renderer

from ..conftest import fixture_registry

SUB = Subscriber("s-1", "tel:8801812345678", "01812345678")


def demo() -> Engine:
    registry = fixture_registry()
    renderer = Renderer(REPO_ROOT / "templates", REPO_ROOT / "locales")
    return Engine(load_flow_dir(REPO_ROOT / "flows", renderer, registry), renderer, registry)


async def test_an_action_with_no_time_left_takes_its_fallback():
    engine = demo()
    session, _ = await engine.start(SUB, "*213*7#", "en")  # the language menu
    reply = await engine.advance(session, SUB, "1", deadline=time.monotonic() - 1)  # Bangla: set_language
    assert reply.entered[-1] == ("demo", "busy") and reply.final and reply.language is None


async def test_the_same_action_with_time_left_runs():
    engine = demo()
    session, _ = await engine.start(SUB, "*213*7#", "bn")
    reply = await engine.advance(session, SUB, "1", deadline=time.monotonic() + 60)
    assert reply.language == "en" and reply.entered[-1] == ("demo", "main")
