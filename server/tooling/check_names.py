"""`alap check` on the Jinja in flows: variables nobody provides (errors), syntax errors in
action `args` (which the loader does not compile), and `|float` on a money variable
(warnings: floats turn 1,500.50 x 7% into 105.03; the money filters of
server/render/money_filters.py are exact)."""
from __future__ import annotations

from typing import Iterator

import jinja2
from jinja2 import meta, nodes

from ..engine.errors import Mark
from ..engine.model import Flow, State
from ..render.environment import Renderer
from .check_samples import known_names
from .findings import SOURCE_LANGUAGE, Report

def _unguarded(node: nodes.Node, guarded: bool = False) -> set[str]:
    """Names read outside `x is defined` / `x|default(...)`: those two mean "may be absent"."""
    if isinstance(node, nodes.Name):
        return set() if guarded or node.ctx != "load" else {node.name}
    out: set[str] = set()
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        out |= _unguarded(node.node, guarded)
        if isinstance(node, nodes.Getitem):
            out |= _unguarded(node.arg)
        return out
    if isinstance(node, nodes.Test) and node.name in ("defined", "undefined") or \
            isinstance(node, nodes.Filter) and node.name in ("default", "d"):
        out |= _unguarded(node.node, True)  # type: ignore[arg-type]
        for child in node.iter_child_nodes(exclude=("node",)):
            out |= _unguarded(child)
        return out
    for child in node.iter_child_nodes():
        out |= _unguarded(child)
    return out


def undefined_names(env: jinja2.Environment, source: str, known: set[str]) -> list[str]:
    """Variables `source` reads that nobody provides (sorted); [] when it does not parse (the
    loader reports syntax errors)."""
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError:
        return []
    return sorted((meta.find_undeclared_variables(tree) & _unguarded(tree)) - known)


def floated_money(env: jinja2.Environment, source: str, money: frozenset[str]) -> list[str]:
    """Money variables `source` passes through `|float` (sorted)."""
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError:
        return []
    found = {f.node.name for f in tree.find_all(nodes.Filter)
             if f.name == "float" and isinstance(f.node, nodes.Name) and f.node.name in money}
    return sorted(found)


def texts_of(state: State) -> Iterator[tuple[str, Mark, str]]:
    """(what, mark, Jinja source) of every inline text of a state."""
    if state.text and state.text.source is not None:
        yield f"screen '{state.name}'", state.text.mark, state.text.source
    for option in state.options:
        yield f"option of screen '{state.name}'", option.label.mark, option.label.source or ""
    if state.error and state.error.source is not None:
        yield f"error of screen '{state.name}'", state.error.mark, state.error.source


def _sources(state: State) -> Iterator[tuple[str, Mark, str]]:
    """Every Jinja source of a state: texts, conditions (as expressions) and action args."""
    yield from texts_of(state)
    for what, route in [("a condition", o) for o in state.options if o.when] + \
                       [("a condition", r) for r in state.routes if r.when] + \
                       [("a condition", r) for r in (state.more, state.back) if r and r.when]:
        yield f"{what} of state '{state.name}'", route.mark, "{{ %s }}" % route.when
    mark = state.ref_marks.get("action", state.mark)
    for key, value in state.args.items():
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            yield f"args.{key} of action state '{state.name}'", state.ref_marks.get(f"arg:{key}", mark), value


def check_names(flow: Flow, renderer: Renderer, money: frozenset[str], report: Report) -> None:
    known = known_names(flow, renderer)
    env = renderer.envs[SOURCE_LANGUAGE]
    for state in flow.states.values():
        for what, mark, source in texts_of(state):
            _report_names(renderer, source, known, mark, what, report, (flow.name, state.name))
        if state.text and state.text.template:
            _check_template_names(renderer, flow, state, known, report)
        conditions = [(o.when, o.mark) for o in state.options if o.when] + \
                     [(r.when, r.mark) for r in state.routes if r.when] + \
                     [(r.when, r.mark) for r in (state.more, state.back) if r and r.when]
        for expr, mark in conditions:
            for name in undefined_names(env, "{{ %s }}" % expr, known):
                report.add(mark, f"undefined variable '{name}' in a condition of state '{state.name}'")
        _check_args(state, renderer, known, report)
        for what, mark, source in _sources(state):
            for name in floated_money(env, source, money):
                report.add(mark, f"'{name}|float' in {what}: '{name}' is money (an amount input) and floats "
                           f"round it wrongly; use |percent, |times, |divided, |round_taka (exact)", "warning")


def _report_names(renderer: Renderer, source: str, known: set[str], mark: Mark, what: str, report: Report,
                  key: tuple[str, str]) -> None:
    reported: set[str] = set()
    for lang in (SOURCE_LANGUAGE, *[lang for lang in renderer.languages if lang != SOURCE_LANGUAGE]):
        translated = source if lang == SOURCE_LANGUAGE else renderer.gettext(lang, source)
        if lang != SOURCE_LANGUAGE and translated == source:
            continue
        for name in undefined_names(renderer.envs[lang], translated, known):
            if name not in reported:
                reported.add(name)
                report.undefined.add((*key, name))
                suffix = "" if lang == SOURCE_LANGUAGE else f" (in the {lang} translation)"
                report.add(mark, f"undefined variable '{name}' in {what}{suffix}")


def _check_template_names(renderer: Renderer, flow: Flow, state: State, known: set[str], report: Report) -> None:
    assert state.text is not None and state.text.template is not None
    env = renderer.envs[SOURCE_LANGUAGE]
    try:
        source, _, _ = env.loader.get_source(env, state.text.template)  # type: ignore[union-attr]
    except jinja2.TemplateNotFound:
        return  # the loader reported it
    for name in undefined_names(env, source, known):
        report.undefined.add((flow.name, state.name, name))
        report.add(state.text.mark, f"undefined variable '{name}' in screen '{state.name}' "
                   f"(template {state.text.template})")


def _check_args(state: State, renderer: Renderer, known: set[str], report: Report) -> None:
    """Action args are rendered per hop by the engine, never compiled at load: check them here."""
    mark = state.ref_marks.get("action", state.mark)
    env = renderer.envs[SOURCE_LANGUAGE]
    for key, value in state.args.items():
        if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
            continue
        try:
            env.parse(value)
        except jinja2.TemplateSyntaxError as exc:
            report.add(mark, f"template syntax error in args.{key} of action state '{state.name}': {exc.message}")
            continue
        for name in undefined_names(env, value, known):
            report.add(mark, f"undefined variable '{name}' in args.{key} of action state '{state.name}'")
