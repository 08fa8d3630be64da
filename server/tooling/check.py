"""`alap check`: everything the loader validates, plus what only shows when screens are rendered.

1. Loader problems (malformed YAML, unknown fields/targets/actions, Jinja syntax...): errors.
2. Screens: every screen state (menu, input, end) of every flow is rendered in every
   language with the flow's `sample:` data, the way the engine lays it out (text, visible
   options, navigation labels), and measured against the budget of the encoding it would be
   sent in (the engine's rule: the whole screen plus its "98. More"/"0. Back" labels ASCII ->
   `ALAP_BUDGET_440`, else `ALAP_BUDGET_16`; SMS-only flows: the engine's SMS budget, three
   concatenated parts). Rules (also in docs/flows.md):
     - warning: the screen is longer than its budget, so its first page needs pagination;
     - error: it needs pagination and a page cannot show it properly:
         * a word longer than a page's room would be cut mid-word,
         * a menu option line longer than a page's room would be split across lines/pages,
         * a menu's text above its options is longer than a page's room, so the first page
           would show no option at all (when the text fits but the first option does not fit
           beside it, the first page shows no option either: the warning says so).
     A page's room is the budget minus the "98. More" and "0. Back" lines. On the screen shown
     after an invalid input (below) these are warnings: the subscriber has made a mistake and
     still reaches everything with "98".
   The same is done for the screen shown after an invalid input (error line on top) when the
   plain screen fits, and for extra per-state samples: `sample: {"@state": {var: value}}` (or a
   list of such mappings) renders `state` again with those variables overridden.
3. Catalogs: every msgid a flow shows (texts, labels, errors, validator default errors,
   `_('literal')` calls), every msgid of the templates and the engine's system msgids must be
   translated (present, not fuzzy, not empty) in bn: errors. In en (the source language, empty
   msgstr is fine) a missing or fuzzy entry is a warning: nothing changes at run time, but the
   catalog is out of step with `pybabel update`. Values that flows pass to `_()` (e.g. the
   operator name in the sample) and that bn lacks are warnings.
4. Jinja: variables a screen, condition or action argument uses that are neither in `sample:`,
   nor an input `var`, nor an action's `save_as`, nor an option's `set:`, nor `lang`/`msisdn` are errors
   (`undefined variable 'x' in screen 'y'`); names only tested with `is defined` or given a
   `|default` are fine. Screens are rendered with StrictUndefined, so a missing attribute or a
   filter failing on the sample data is an error too. Syntax errors in action `args` (which the
   loader does not compile) are errors.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import jinja2
from jinja2 import meta, nodes

from ..config import Settings
from ..engine.actions import ActionRegistry
from ..engine.engine import SMS_BUDGET
from ..engine.errors import FlowErrors, FlowProblem, Mark
from ..engine.loader import load_flow_dir, parse_flow
from ..engine.model import Flow, State
from ..engine.validators import AmountValidator, BdMobileValidator, IntegerValidator, Invalid, Validator
from ..render import system
from ..render.budget import Budget, paginate
from ..render.catalogs import message_problem
from ..render.environment import Renderer
from .babel_extract import extract_python

SAMPLE_MSISDN = "01812345678"
SOURCE_LANGUAGE = "en"


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    col: int
    severity: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        # gcc style, which editors already parse: warnings say so, errors stay as the loader's.
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"


class _Report:
    def __init__(self) -> None:
        self.findings: dict[Finding, None] = {}  # ordered set: one line per distinct finding
        # (flow, state, variable) already reported from the source: the render failing on the
        # same variable would only say it again.
        self.undefined: set[tuple[str, str, str]] = set()

    def add(self, mark: Mark, message: str, severity: str = "error") -> None:
        self.findings[Finding(mark.file, mark.line, mark.col, severity, message)] = None


def _display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- entry point ---------------------------------------------------------------------------------

def run_check(settings: Settings, registry: ActionRegistry) -> list[Finding]:
    """Every finding for the flows, templates and catalogs `settings` point at, sorted."""
    report = _Report()
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    flows = _load_flows(Path(settings.flows_dir), renderer, registry, report)
    for loaded in renderer.catalogs.values():
        for problem in loaded.problems:
            report.add(Mark(_display(loaded.path or settings.locales_dir), 1, 1), problem)
    # A second renderer with StrictUndefined: sample rendering must fail loudly on a gap.
    strict = Renderer(settings.templates_dir, settings.locales_dir, strict=True)
    dynamic = _record_gettext(strict)
    ussd = Budget(settings.budget_ascii, settings.budget_unicode)
    static_msgids = _check_catalogs(flows, renderer, report)
    for flow in flows:
        _check_sample_keys(flow, report)
        _check_names(flow, strict, report)
        # A flow on both channels is measured against the tighter USSD budget.
        if "ussd" in flow.channels:
            _check_screens(flow, strict, ussd, settings.ussd_unicode, report)
        elif "sms" in flow.channels:
            _check_screens(flow, strict, SMS_BUDGET, True, report)
        _check_dynamic_msgids(flow, strict, dynamic, static_msgids, report)
    return sorted(report.findings)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def format_text(findings: list[Finding]) -> str:
    return "\n".join(str(f) for f in findings)


def format_json(findings: list[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], ensure_ascii=False, indent=1)


def _load_flows(flows_dir: Path, renderer: Renderer, registry: ActionRegistry, report: _Report) -> list[Flow]:
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


# -- sample data ---------------------------------------------------------------------------------

def _placeholder(validator: Validator | None) -> Any:
    """A value an input var plausibly holds, for screens that show it; the longest the
    validator allows where that is known (screens are measured at their worst)."""
    if isinstance(validator, IntegerValidator):
        return validator.max if validator.max is not None else (validator.min or 1)
    if isinstance(validator, AmountValidator):
        return str(validator.max if validator.max is not None else (validator.min or 1))
    if isinstance(validator, BdMobileValidator):
        return SAMPLE_MSISDN
    return "sample"


def sample_context(flow: Flow, lang: str) -> dict[str, Any]:
    """The variables screens see when `alap check` renders them: input placeholders, then the
    flow's `sample:` (which wins), then what the engine always sets."""
    ctx: dict[str, Any] = {}
    for state in flow.states.values():
        if state.kind == "input" and state.var:
            ctx[state.var] = _placeholder(state.validator)
    ctx.update({str(k): v for k, v in flow.sample.items() if not str(k).startswith("@")})
    ctx["lang"] = lang
    ctx["msisdn"] = SAMPLE_MSISDN
    return ctx


def _known_names(flow: Flow, renderer: Renderer) -> set[str]:
    names = {str(k) for k in flow.sample if not str(k).startswith("@")} | {"lang", "msisdn"}
    names |= {s.var for s in flow.states.values() if s.var} | {s.save_as for s in flow.states.values() if s.save_as}
    names |= {name for s in flow.states.values() for o in s.options for name, _ in o.set}  # options' `set:`
    names |= set(next(iter(renderer.envs.values())).globals)
    return names


def _state_samples(flow: Flow, state: State, report: _Report) -> list[tuple[str, dict[str, Any]]]:
    """Per-state extra samples (`"@state": mapping or list of mappings`), labelled for messages."""
    value = flow.sample.get(f"@{state.name}")
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            report.add(getattr(value, "mark", state.mark), f"sample '@{state.name}' must be a mapping of variables "
                       "or a list of them")
            return []
        out.append((f" with sample '@{state.name}'" + (f" #{i}" if len(items) > 1 else ""), dict(item)))
    return out


def _check_sample_keys(flow: Flow, report: _Report) -> None:
    for key, value in flow.sample.items():
        if str(key).startswith("@") and str(key)[1:] not in flow.states:
            report.add(getattr(value, "mark", flow.mark or Mark(flow.file, 1, 1)),
                       f"sample '{key}' names no state of flow '{flow.name}'")


# -- Jinja names ---------------------------------------------------------------------------------

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


def _texts_of(state: State) -> Iterator[tuple[str, Mark, str]]:
    """(what, mark, Jinja source) of every inline text of a state."""
    if state.text and state.text.source is not None:
        yield f"screen '{state.name}'", state.text.mark, state.text.source
    for option in state.options:
        yield f"option of screen '{state.name}'", option.label.mark, option.label.source or ""
    if state.error and state.error.source is not None:
        yield f"error of screen '{state.name}'", state.error.mark, state.error.source


def _check_names(flow: Flow, renderer: Renderer, report: _Report) -> None:
    known = _known_names(flow, renderer)
    for state in flow.states.values():
        for what, mark, source in _texts_of(state):
            _report_names(renderer, source, known, mark, what, report, (flow.name, state.name))
        if state.text and state.text.template:
            _check_template_names(renderer, flow, state, known, report)
        conditions = [(o.when, o.mark) for o in state.options if o.when] + \
                     [(r.when, r.mark) for r in state.routes if r.when]
        for expr, mark in conditions:
            for name in undefined_names(renderer.envs[SOURCE_LANGUAGE], "{{ %s }}" % expr, known):
                report.add(mark, f"undefined variable '{name}' in a condition of state '{state.name}'")
        _check_args(state, renderer, known, report)


def _report_names(renderer: Renderer, source: str, known: set[str], mark: Mark, what: str, report: _Report,
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


def _check_template_names(renderer: Renderer, flow: Flow, state: State, known: set[str], report: _Report) -> None:
    assert state.text is not None and state.text.template is not None
    env = renderer.envs[SOURCE_LANGUAGE]
    try:
        source, filename, _ = env.loader.get_source(env, state.text.template)  # type: ignore[union-attr]
    except jinja2.TemplateNotFound:
        return  # the loader reported it
    for name in undefined_names(env, source, known):
        report.undefined.add((flow.name, state.name, name))
        report.add(state.text.mark, f"undefined variable '{name}' in screen '{state.name}' "
                   f"(template {state.text.template})")


def _check_args(state: State, renderer: Renderer, known: set[str], report: _Report) -> None:
    """Action args are rendered per hop by the engine, never compiled at load: check them here."""
    mark = state.ref_marks.get("action", state.mark)
    for key, value in state.args.items():
        if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
            continue
        try:
            renderer.envs[SOURCE_LANGUAGE].parse(value)
        except jinja2.TemplateSyntaxError as exc:
            report.add(mark, f"template syntax error in args.{key} of action state '{state.name}': {exc.message}")
            continue
        for name in undefined_names(renderer.envs[SOURCE_LANGUAGE], value, known):
            report.add(mark, f"undefined variable '{name}' in args.{key} of action state '{state.name}'")


# -- screens and budgets -------------------------------------------------------------------------

@dataclass
class Screen:
    """A screen as the engine would lay it out: header lines (error notice, text) then options."""

    header: list[str]
    options: list[str]

    @property
    def lines(self) -> list[str]:
        return self.header + self.options


def render_screen(renderer: Renderer, flow: Flow, state: State, lang: str, ctx: Mapping[str, Any],
                  notice: tuple[str, Mapping[str, Any]] | None = None) -> Screen:
    """Mirrors engine._Turn._screen (tests/test_check.py holds the two together)."""
    header: list[str] = []
    if notice:
        header.append(renderer.render_text(lang, notice[0], {**ctx, **notice[1]}))
    if state.text is not None:
        if state.text.template:
            header.append(renderer.render_template(lang, state.text.template, ctx))
        elif state.text.source is not None:
            header.append(renderer.render_text(lang, state.text.source, ctx))
    options = []
    number = 0
    for option in state.options:
        if option.when and not renderer.evaluate(option.when, ctx):
            continue
        if option.key is None:
            number += 1
        key = option.key if option.key is not None else str(number)
        options.append(f"{key}. {renderer.render_text(lang, option.label.source or '', ctx)}")
    return Screen(header, options)


def nav_labels(renderer: Renderer, flow: Flow, lang: str) -> tuple[str, str]:
    nav = flow.navigation
    return (f"{nav.more}. {renderer.gettext(lang, system.MORE)}",
            f"{nav.back}. {renderer.gettext(lang, system.BACK)}")


def budget_problems(screen: Screen, budget: Budget, more: str, back: str, *, menu: bool) -> tuple[list[str], str | None]:
    """(errors, warning) for one laid-out screen, by the rules in the module docstring.
    Messages are completed by the caller with which screen and language."""
    whole = "\n".join(screen.lines)
    limit = budget.for_text(whole + more + back)  # the engine's choice of budget (render/budget.py)
    if len(whole) <= limit:
        return [], None
    room = limit - len(more) - len(back) - 2
    if room < 10:
        return [f"leaves no room on a page next to '{more}' and '{back}' (budget {limit})"], None
    errors = []
    for line in screen.lines:
        for word in line.split(" "):  # paginate splits at spaces only
            if len(word) > room:
                errors.append(f"has the unbreakable '{_short(word)}' of {len(word)} characters, more than the "
                              f"{room} a page holds next to its navigation lines: it would be cut mid-word")
    for line in screen.options:
        if len(line) > room:
            errors.append(f"has the option '{_short(line)}' of {len(line)} characters, more than the {room} a page "
                          f"holds next to its navigation lines: it would be split")
    header = "\n".join(screen.header)
    pages = len(paginate(screen.lines, budget, more, back))
    warning = f"is {len(whole)} characters, budget {limit} ({pages} pages)"
    if menu and screen.options and len(header) > room:
        errors.append(f"has {len(header)} characters of text above its options, more than the {room} a page holds "
                      f"next to its navigation lines: the first page would show no option")
    elif menu and screen.options and not _option_on_first_page(screen, limit, more, back):
        warning += f"; its first option does not fit beside the {len(header)} characters of text above it, " \
                   f"so the first page shows no option"
    return errors, warning


def _option_on_first_page(screen: Screen, limit: int, more: str, back: str) -> bool:
    """Whether paginate puts an option on page one: option lines get a private-use marker in
    place of their first character (same length, same spaces) and a budget of `limit` for any
    encoding, so the layout is exactly the real one."""
    marker = "\ue000"
    marked = screen.header + [marker + line[1:] for line in screen.options]
    return marker in paginate(marked, Budget(limit, limit), more, back)[0]


def _short(text: str, width: int = 30) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _notice(state: State) -> tuple[str, dict[str, Any]] | None:
    """The error line the engine puts above a screen after an invalid input."""
    if state.kind == "menu":
        return system.INVALID_CHOICE, {}
    if state.kind == "input" and state.validator is not None:
        if state.error and state.error.source:
            return state.error.source, state.validator.params()
        failed = state.validator.fail()
        return failed.msgid, failed.params
    return None


def _check_screens(flow: Flow, renderer: Renderer, budget: Budget, unicode: bool, report: _Report) -> None:
    for state in flow.states.values():
        if state.kind not in ("menu", "input", "end"):
            continue
        mark = state.text.mark if state.text else state.mark
        for lang in renderer.languages:
            base = sample_context(flow, lang)
            variants = [("", base, None)] + [(label, {**base, **extra}, None)
                                             for label, extra in _state_samples(flow, state, report)]
            notice = _notice(state)
            for label, ctx, _ in variants:
                fits = _check_one(flow, state, renderer, lang, ctx, None, label, budget, unicode, mark, report)
                if fits is True and notice and label == "":
                    _check_one(flow, state, renderer, lang, ctx, notice, " after an invalid input", budget,
                               unicode, mark, report)


def _check_one(flow: Flow, state: State, renderer: Renderer, lang: str, ctx: dict[str, Any],
               notice: tuple[str, dict[str, Any]] | None, label: str, budget: Budget, unicode: bool,
               mark: Mark, report: _Report) -> bool | None:
    """Render and measure one variant: True when it fits its budget, None when it could not be
    rendered (reported) or is not sent as rendered."""
    where = f"screen '{state.name}'{label} in {lang}"
    try:
        screen = render_screen(renderer, flow, state, lang, ctx, notice)
    except jinja2.UndefinedError as exc:
        match = _UNDEFINED.match(str(exc))
        if not (match and (flow.name, state.name, match.group(1)) in report.undefined):
            report.add(mark, _undefined_message(str(exc), where))
        return None
    except Exception as exc:  # a filter or expression failing on the sample data
        report.add(mark, f"{where} does not render with the sample data: {type(exc).__name__}: {exc}")
        return None
    if not unicode and lang != SOURCE_LANGUAGE and not "\n".join(screen.lines).isascii():
        return None  # a GSM-7-only deployment sends this screen in English, checked on its own
    more, back = nav_labels(renderer, flow, lang)
    errors, warning = budget_problems(screen, budget, more, back, menu=state.kind == "menu")
    for error in errors:
        # After a mistake the subscriber still reaches everything with "98": degraded, not broken.
        report.add(mark, f"{where} {error}", "warning" if notice else "error")
    if warning and not errors:
        report.add(mark, f"{where} {warning}", "warning")
    return warning is None


_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


def _undefined_message(error: str, where: str) -> str:
    match = _UNDEFINED.match(error)
    if match:
        return f"undefined variable '{match.group(1)}' in {where}"
    return f"undefined variable in {where}: {error}"


# -- catalogs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Msgid:
    msgid: str
    mark: Mark
    what: str


def flow_msgids(flow: Flow, renderer: Renderer) -> Iterator[Msgid]:
    """Every msgid a flow shows: texts, labels, errors, `_('literal')` calls inside them and the
    default errors of validators used without an `error:`."""
    env = renderer.envs[SOURCE_LANGUAGE]
    for state in flow.states.values():
        for what, mark, source in _texts_of(state):
            yield Msgid(source, mark, what)
            for _, _, literal in env.extract_translations(source):
                if isinstance(literal, str):
                    yield Msgid(literal, mark, f"_() in {what}")
        if state.kind == "input" and state.validator is not None and not state.error:
            empty = state.validator.check("")
            for invalid in {state.validator.fail().msgid, empty.msgid if isinstance(empty, Invalid) else ""} - {""}:
                yield Msgid(invalid, state.mark, f"the {state.validator.kind} validator's error in '{state.name}'")


def template_msgids(renderer: Renderer) -> Iterator[Msgid]:
    env = renderer.envs[SOURCE_LANGUAGE]
    for path in sorted(renderer.templates_dir.rglob("*.j2")):
        try:
            found = list(env.extract_translations(path.read_text(encoding="utf-8")))
        except jinja2.TemplateSyntaxError:
            continue  # reported by the loader when a flow uses it
        for lineno, _, message in found:
            if isinstance(message, str):
                yield Msgid(message, Mark(_display(path), lineno, 1), f"template {path.name}")
            elif isinstance(message, tuple):
                for part in message:
                    if isinstance(part, str):
                        yield Msgid(part, Mark(_display(path), lineno, 1), f"template {path.name}")


def system_msgids() -> Iterator[Msgid]:
    path = Path(system.__file__)
    with path.open("rb") as fh:
        for lineno, _, message, _ in extract_python(fh, ["N_"], [], {}):
            yield Msgid(message, Mark(_display(path), lineno, 1), "engine system text")


def _check_catalogs(flows: list[Flow], renderer: Renderer, report: _Report) -> set[str]:
    """Report msgids missing, fuzzy or untranslated; returns every static msgid seen."""
    seen: set[str] = set()
    items = [m for flow in flows for m in flow_msgids(flow, renderer)]
    items += list(template_msgids(renderer)) + list(system_msgids())
    for item in items:
        seen.add(item.msgid)
        for lang, loaded in renderer.catalogs.items():
            if loaded.catalog is None:
                continue  # the catalog itself is reported as unreadable
            problem = _catalog_problem(loaded.catalog, item.msgid, lang)
            if problem:
                severity = "warning" if lang == SOURCE_LANGUAGE else "error"
                report.add(item.mark, f"msgid {_quote(item.msgid)} ({item.what}) {problem} in "
                           f"{_display(loaded.path)}", severity)  # type: ignore[arg-type]
    return seen


def _catalog_problem(catalog: Any, msgid: str, lang: str) -> str | None:
    return message_problem(catalog, msgid, lang)  # the rule `alap serve` applies too


def _quote(msgid: str) -> str:
    return repr(_short(msgid, 50))


# -- values passed to _() ------------------------------------------------------------------------

def _record_gettext(renderer: Renderer) -> dict[str, set[str]]:
    """Wrap each language's `gettext` global (which `_()` and `{% trans %}` call) to record the
    msgids that rendering asks for, so values a flow translates at run time can be checked."""
    seen: dict[str, set[str]] = {lang: set() for lang in renderer.languages}
    for lang, env in renderer.envs.items():
        original = env.globals["gettext"]

        @jinja2.pass_context
        def gettext(__context: Any, __string: str, __original: Any = original, __seen: set[str] = seen[lang],
                    **variables: Any) -> str:
            __seen.add(__string)
            return __original(__context, __string, **variables)

        env.globals["gettext"] = gettext
    return seen


def _check_dynamic_msgids(flow: Flow, renderer: Renderer, seen: dict[str, set[str]], static: set[str],
                          report: _Report) -> None:
    """Warn about values shown through `_()` with the sample data that bn does not translate.
    Runs after the screens of `flow` were rendered; clears what it consumed."""
    for lang, msgids in seen.items():
        loaded = renderer.catalogs[lang]
        if lang == SOURCE_LANGUAGE or loaded.catalog is None:
            msgids.clear()
            continue
        for msgid in sorted(msgids - static):
            problem = _catalog_problem(loaded.catalog, msgid, lang)
            if problem and msgid:
                report.add(flow.mark or Mark(flow.file, 1, 1),
                           f"msgid {_quote(msgid)} (a value flow '{flow.name}' shows through _() with its "
                           f"sample data) {problem} in {_display(loaded.path)}", "warning")  # type: ignore[arg-type]
        msgids.clear()


# -- documentation -------------------------------------------------------------------------------

def actions_table(registry: ActionRegistry) -> str:
    """The registered actions as the Markdown table docs/flows.md embeds (tests/test_check.py
    keeps the two equal, so a new action shows up in the docs)."""
    rows = ["| action | outcomes | what it does |", "| --- | --- | --- |"]
    for name in registry.names():
        spec = registry.get(name)
        assert spec is not None
        outcomes = ", ".join(f"`{o}`" for o in sorted(spec.outcomes))
        rows.append(f"| `{name}` | {outcomes} | {spec.description} |")
    return "\n".join(rows)
