"""`alap check`: everything the loader validates, plus what only shows when screens are rendered.

1. Loader problems (server/engine/loader.py): errors, every one with a "did you mean".
2. Screens and budgets (check_screens.py), rendered with the sample data (check_samples.py:
   an input variable with no `sample:` value is a warning, naming it).
3. Catalogs (check_catalogs.py): untranslated, fuzzy or missing msgids; a stale messages.pot.
4. Jinja (check_names.py): undefined variables, syntax errors in action args, `|float` on money.

`serving_problems` is the same check as the gate `alap serve` and `alap dev` apply: its errors
stop `alap serve` from starting and make `alap dev` keep the last good version.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from ..config import Settings
from ..engine.actions import ActionRegistry
from ..engine.engine import SMS_BUDGET
from ..engine.money import money_vars
from ..engine.errors import FlowErrors, FlowProblem, Mark
from ..engine.loader import load_flow_dir, parse_flow
from ..engine.model import Flow
from ..render.budget import Budget
from ..render.environment import Renderer
from .check_catalogs import check_catalogs, check_dynamic_msgids, check_pot, flow_msgids, record_gettext, \
    template_msgids
from .check_names import check_names
from .check_samples import check_missing_samples, check_sample_keys, sample_context
from .check_screens import Screen, budget_problems, check_screens, render_screen
from .findings import Finding, Report, display_path

__all__ = ["Finding", "Screen", "budget_problems", "flow_msgids", "format_json", "format_text", "has_errors",
           "render_screen", "run_check", "sample_context", "serving_problems", "template_msgids"]


def run_check(settings: Settings, registry: ActionRegistry) -> list[Finding]:
    """Every finding for the flows, templates and catalogs `settings` point at, sorted."""
    report = Report()
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    flows = _load_flows(Path(settings.flows_dir), renderer, registry, report)
    for loaded in [*renderer.catalogs.values(), *renderer.engine_catalogs.values()]:
        for problem in loaded.problems:
            report.add(Mark(display_path(loaded.path or settings.locales_dir), 1, 1), problem)
    # A second renderer with StrictUndefined: sample rendering must fail loudly on a gap.
    strict = Renderer(settings.templates_dir, settings.locales_dir, strict=True)
    dynamic = record_gettext(strict)
    ussd = Budget(settings.budget_ascii, settings.budget_unicode)
    money = money_vars(flows)
    static_msgids = check_catalogs(flows, renderer, report)
    check_pot(Path(settings.flows_dir), Path(settings.templates_dir), Path(settings.locales_dir), report)
    for flow in flows:
        check_sample_keys(flow, report)
        check_missing_samples(flow, report)
        check_names(flow, strict, money, report)
        # A flow on both channels is measured against the tighter USSD budget.
        if "ussd" in flow.channels:
            check_screens(flow, strict, ussd, settings.ussd_unicode, money, report)
        elif "sms" in flow.channels:
            check_screens(flow, strict, SMS_BUDGET, True, money, report)
        check_dynamic_msgids(flow, strict, dynamic, static_msgids, report)
    return sorted(report.findings)


def serving_problems(settings: Settings, registry: ActionRegistry) -> list[FlowProblem]:
    """The errors of `alap check` (warnings do not count), as flow problems: what stops `alap
    serve` and what makes `alap dev` keep its last good version."""
    return [FlowProblem(Mark(f.file, f.line, f.col), f.message) for f in run_check(settings, registry)
            if f.severity == "error"]


def require_servable(settings: Settings, registry: ActionRegistry) -> None:
    """Raise FlowErrors listing every `alap check` error (the loader's rules and the rest)."""
    problems = serving_problems(settings, registry)
    if problems:
        raise FlowErrors(problems)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def format_text(findings: list[Finding]) -> str:
    return "\n".join(str(f) for f in findings)


def format_json(findings: list[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], ensure_ascii=False, indent=1)


def _load_flows(flows_dir: Path, renderer: Renderer, registry: ActionRegistry, report: Report) -> list[Flow]:
    """All flows when they load; otherwise the loader's problems plus every file that parses
    cleanly on its own, so one broken file does not hide the screen checks of the others."""
    try:
        return load_flow_dir(flows_dir, renderer, registry)
    except FlowErrors as exc:
        problems: list[FlowProblem] = exc.problems
    for problem in problems:
        report.add(problem.mark, problem.message, problem.severity)
    broken = {p.mark.file for p in problems}
    flows = []
    for path in sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]):
        flow, found = parse_flow(path, path.read_text(encoding="utf-8"), renderer, registry)
        if flow is not None and not found and flow.file not in broken:
            flows.append(flow)
    return flows


def actions_table(registry: ActionRegistry) -> str:
    """The registered actions as the Markdown table docs/flows.md embeds (tests/tooling/test_alap_check.py
    keeps the two equal, so a new action shows up in the docs)."""
    rows = ["| action | outcomes | parameters | what it does |", "| --- | --- | --- | --- |"]
    for name in registry.names():
        spec = registry.get(name)
        assert spec is not None
        outcomes = ", ".join(f"`{o}`" for o in sorted(spec.outcomes))
        params = "any" if spec.params is None else (", ".join(f"`{p}`" for p in sorted(spec.params)) or "none")
        rows.append(f"| `{name}` | {outcomes} | {params} | {spec.description} |")
    return "\n".join(rows)
