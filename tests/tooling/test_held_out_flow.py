"""A held-out flow written from docs/flows.md alone (tests/fixtures/union_parishad: a status
lookup, a 7% tax calculator, a 12-item notice board, a language switch) loads, passes `alap
check --strict` and its conversation tests. The only change from its first, float-based draft
is the tax line, and that draft is what `alap check` warns about."""
from __future__ import annotations

import difflib
import shutil
from pathlib import Path

from server.actions import build_registry
from server.engine.engine import Engine, Subscriber
from server.engine.loader import load_flow_dir
from server.render.environment import Renderer
from server.tooling.check import run_check
from server.tooling.convtest import Runner, load_dialogues
from server.upstreams import Upstreams

from ..conftest import test_settings as settings_for

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "union_parishad"
EXACT = "{{ rent|percent(7)|round_taka|taka }}"
FLOAT = "{{ ((rent|float) * 7 / 100)|round(2)|taka }}"  # the first draft's arithmetic


def settings(root: Path = FIXTURE):
    return settings_for(flows_dir=root / "flows", templates_dir=root / "templates", locales_dir=root / "locales")


def test_the_held_out_flow_passes_strict_check() -> None:
    values = settings()
    assert [str(f) for f in run_check(values, build_registry(Upstreams.from_settings(values)))] == []


async def test_the_held_out_flow_conversations_pass() -> None:
    runner = Runner(settings())
    try:
        dialogues = load_dialogues(FIXTURE / "tests" / "flows" / "up.yaml")
        results = [await runner.run(d) for d in dialogues]
    finally:
        await runner.aclose()
    assert len(results) == 6
    assert [r.failure for r in results if not r.ok] == []


async def test_the_float_draft_differs_only_in_its_arithmetic_and_is_warned_about(tmp_path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "up")
    flow = tmp_path / "up" / "flows" / "up.yaml"
    final = flow.read_text(encoding="utf-8")
    flow.write_text(final.replace(EXACT, FLOAT), encoding="utf-8")
    changed = [line for line in difflib.unified_diff(final.splitlines(), flow.read_text().splitlines(), lineterm="",
                                                     n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 2 and all("rent" in line and "taka" in line for line in changed)

    values = settings(tmp_path / "up")
    findings = run_check(values, build_registry(Upstreams.from_settings(values)))
    line = next(i for i, text in enumerate(flow.read_text().splitlines(), 1) if FLOAT in text)
    assert any(f.line == line and f.severity == "warning" and "'rent|float' in screen 'tax'" in f.message
               for f in findings)
    # The draft loads and runs; its answer is a paisa short: floats round 105.035 down.
    renderer = Renderer(values.templates_dir, values.locales_dir)
    registry = build_registry()
    engine = Engine(load_flow_dir(values.flows_dir, renderer, registry), renderer, registry)
    _, reply = await engine.start(Subscriber("s", "tel:8801812345678"), "*345*2*1500.50#", "en")
    assert reply.text == "Tax on Tk 1,500.50: Tk 105.03"
