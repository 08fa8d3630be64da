"""Pagination to the screen budget: a long text is split into pages with localized "98. More" /
"0. Back" lines, never cut, within a configurable budget (through the engine's turns)."""
from __future__ import annotations

from server.render.budget import Budget
from tests.engine.test_turns import demo, make_engine, walk  # noqa: F401  (demo is the shared fixture)


async def test_long_text_is_paginated_never_cut(demo):
    session, screens = await walk(demo, "*213#", ["8", "98", "98", "98"], "bn")
    pages = [s.text for s in screens[1:]]
    assert all(len(p) <= 80 for p in pages)
    assert [s.final for s in screens[1:]] == [False, False, False, True]
    body = " ".join(p.replace("\n98. আরও", "").replace("\n0. পেছনে", "") for p in pages)
    assert "আলাপ বাংলাদেশের জন্য" in body and "ভাষা মনে রাখে।" in body
async def test_budget_is_configurable():
    engine = make_engine(budget=Budget(ascii=60, unicode=40))
    _, [menu] = await walk(engine, "*213#", [], "en")
    assert len(menu.text) <= 60 and menu.text.endswith("98. More")
