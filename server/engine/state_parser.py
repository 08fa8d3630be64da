"""One state of a flow file, parsed into a `State`: its fields, texts, options, input
validator, routes, action call and paging targets. Every problem is collected as
`file:line:col: message` with a "did you mean" hint for unknown names; the file as a whole
(top-level fields, references, reachability) is server/engine/loader.py's job.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ..render.environment import Renderer, TextError
from .errors import FlowProblem, Mark
from .model import KINDS, Navigation, Option, Route, State, Text
from .suggest import article, did_you_mean, reject_unknown_keys
from .validators import VALIDATOR_PARAMS, Validator, build_validator
from .yamlmarks import MarkedDict, MarkedList

_COMMON = {"kind", "text", "template", "pages", "resume"}
# `more` / `back`: where 98 / 0 go on a list an action pages through (docs/flows.md, "Navigation").
_PAGING = {"more", "back"}
_FIELDS = {
    "menu": _COMMON | {"options"} | _PAGING,
    "input": _COMMON | {"var", "validate", "error", "retries", "next", "on_fail"} | _PAGING,
    "router": {"kind", "routes"},
    "action": {"kind", "action", "args", "outcomes", "fallback", "timeout", "save_as"},
    "end": _COMMON,
}
# An action runs inside a live USSD hop, under the session lock: keep it well inside the
# gateway's patience and below the lock's lifetime (store.base.LOCK_TTL).
MAX_ACTION_TIMEOUT = 4.0

_OPTION_FIELDS = ("label", "next", "key", "when", "set")
_ROUTE_FIELDS = ("next", "when")


class Collector:
    def __init__(self) -> None:
        self.problems: list[FlowProblem] = []

    def add(self, mark: Mark, message: str) -> None:
        self.problems.append(FlowProblem(mark, message))


def flag(node: MarkedDict, key: str, problems: Collector, default: bool = True) -> bool:
    """A true/false field (`resume:`), reported at its line when it is anything else."""
    value = node.get(key, default)
    if not isinstance(value, bool):
        problems.add(node.value_mark(key), f"'{key}' must be true or false")
        return default
    return value


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _text(node: MarkedDict, problems: Collector, *, required: bool, renderer: Renderer) -> Text | None:
    if "template" in node:
        name = node["template"]
        mark = node.value_mark("template")
        if not isinstance(name, str):
            problems.add(mark, "'template' must be a file name")
            return None
        for lang in renderer.languages:
            try:
                renderer.compile_template(lang, name)
            except TextError as exc:
                where = Mark(display_path(renderer.templates_dir / name), exc.lineno, 1) if exc.lineno else mark
                problems.add(where, f"{exc}" if exc.lineno else f"missing template: {exc}")
                break
        return Text(mark, template=name)
    if "text" in node:
        return _inline(node["text"], node.value_mark("text"), problems, renderer, "text")
    if required:
        problems.add(node.mark, "needs a 'text' or a 'template'")
    return None


def _inline(value: Any, mark: Mark, problems: Collector, renderer: Renderer, what: str) -> Text | None:
    if not isinstance(value, (str, int, float)):
        problems.add(mark, f"'{what}' must be a string")
        return None
    source = str(value)
    for lang in renderer.languages:
        try:
            renderer.compile_text(lang, source)
        except TextError as exc:
            suffix = f" (in the {lang} translation)" if renderer.gettext(lang, source) != source else ""
            line = mark.line + (exc.lineno or 1) - 1
            problems.add(Mark(mark.file, line, mark.col), f"template syntax error in {what}: {exc}{suffix}")
            break
    return Text(mark, source=source)


def _condition(value: Any, mark: Mark, problems: Collector, renderer: Renderer) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(mark, "'when' must be an expression string")
        return None
    try:
        renderer.compile_expression(value)
    except TextError as exc:
        problems.add(mark, f"invalid condition {value!r}: {exc}")
    return value


def _name(value: Any, mark: Mark, problems: Collector, what: str) -> str | None:
    if isinstance(value, str) and value:
        return value
    problems.add(mark, f"'{what}' must be a state name")
    return None


def parse_state(name: str, node: Any, mark: Mark, problems: Collector, renderer: Renderer,
                navigation: Navigation) -> State | None:
    if not isinstance(node, MarkedDict):
        problems.add(mark, f"state '{name}' must be a mapping")
        return None
    kind = node.get("kind")
    if kind not in KINDS:
        hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
        problems.add(node.value_mark("kind") if "kind" in node else node.mark,
                     f"state '{name}': unknown kind {kind!r}{hint or ''} (one of {', '.join(KINDS)})")
        return None
    reject_unknown_keys(node, sorted(_FIELDS[kind]), f"state '{name}': unknown field '{{key}}' for {article(kind)} state", problems.add)
    state = State(name=name, kind=kind, mark=mark, resume=flag(node, "resume", problems))
    if kind in ("menu", "input", "end"):
        state.text = _text(node, problems, required=True, renderer=renderer)
        pages = node.get("pages", None)
        if pages is not None and (not isinstance(pages, int) or isinstance(pages, bool) or pages < 1):
            problems.add(node.value_mark("pages"), "'pages' must be a whole number of pages >= 1")
        else:
            state.pages = pages
    if kind == "menu":
        _parse_options(state, node, problems, renderer, navigation)
    elif kind == "input":
        _parse_input(state, node, problems, renderer)
    elif kind == "router":
        _parse_routes(state, node, problems, renderer)
    elif kind == "action":
        _parse_action(state, node, problems)
    if kind in ("menu", "input"):
        state.more = _paging(node, "more", problems, renderer)
        state.back = _paging(node, "back", problems, renderer)
        state.ref_marks.update({f: node.value_mark(f) for f in _PAGING if getattr(state, f)})
    return state


def _paging(node: MarkedDict, field: str, problems: Collector, renderer: Renderer) -> Route | None:
    """`more: target` or `more: {next: target, when: expr}` (likewise `back`)."""
    if field not in node:
        return None
    value, mark = node[field], node.value_mark(field)
    if isinstance(value, str):
        value = {"next": value}
    elif not isinstance(value, MarkedDict):
        problems.add(mark, f"'{field}' must be a state name or a mapping with 'next' and an optional 'when'")
        return None
    else:
        reject_unknown_keys(value, _ROUTE_FIELDS, f"unknown '{field}' field '{{key}}'", problems.add)
    target = _name(value.get("next"), mark, problems, f"{field}.next")
    when = _condition(value.get("when"), mark, problems, renderer)
    return Route(target, mark, when) if target else None


def _mappings(items: MarkedList, fields: tuple[str, ...], what: str, needs: str,
              problems: Collector) -> Iterator[tuple[int, Mark, MarkedDict]]:
    """(index, mark, entry) for each entry of a menu's options or a router's routes that is a
    mapping; an entry that is not, and a field not in `fields`, is a problem."""
    for i, item in enumerate(items):
        mark = items.mark_at(i)
        if not isinstance(item, MarkedDict):
            problems.add(mark, f"{article(what)} must be a mapping with {needs}")
            continue
        reject_unknown_keys(item, fields, f"unknown {what} field '{{key}}'", problems.add)
        yield i, mark, item


def _parse_options(state: State, node: MarkedDict, problems: Collector, renderer: Renderer,
                   navigation: Navigation) -> None:
    options = node.get("options")
    if not isinstance(options, MarkedList) or not options:
        problems.add(node.mark_of("options") if "options" in node else node.mark,
                     f"menu '{state.name}' needs a non-empty 'options' list")
        return
    seen: dict[str, Mark] = {}
    duplicated: set[str] = set()
    reserved = {navigation.back, navigation.home, navigation.more}
    for i, mark, item in _mappings(options, _OPTION_FIELDS, "option", "'label' and 'next'", problems):
        label = _inline(item.get("label"), item.value_mark("label"), problems, renderer, "label") \
            if "label" in item else None
        if label is None and "label" not in item:
            problems.add(mark, "option needs a 'label'")
        target = _name(item.get("next"), item.value_mark("next"), problems, "next")
        key = item.get("key")
        if key is not None:
            key = str(key)
            if key in seen:
                problems.add(item.value_mark("key"), f"duplicate option key '{key}' (first at line {seen[key].line})")
                duplicated.add(key)
            elif key in reserved:
                problems.add(item.value_mark("key"), f"option key '{key}' is reserved for navigation")
            seen[key] = item.value_mark("key")
        when = _condition(item.get("when"), item.value_mark("when"), problems, renderer)
        assigns = item.get("set", {})
        if not isinstance(assigns, dict) or not all(isinstance(k, str) and k.isidentifier() for k in assigns):
            problems.add(item.value_mark("set"), "'set' must map variable names to values")
            assigns = {}
        if label and target:
            state.options.append(Option(i, label, target, mark, key, when, tuple(assigns.items())))
            state.ref_marks[f"option:{i}"] = item.value_mark("next")
    # Auto-numbered options must not collide with explicit keys.
    auto = [o for o in state.options if o.key is None]
    for n in range(1, len(auto) + 1):
        if str(n) in seen and str(n) not in duplicated:
            problems.add(seen[str(n)], f"duplicate option key '{n}' (also the number of an unkeyed option)")


def _parse_input(state: State, node: MarkedDict, problems: Collector, renderer: Renderer) -> None:
    var = node.get("var")
    if not isinstance(var, str) or not var.isidentifier():
        problems.add(node.value_mark("var") if "var" in node else node.mark,
                     f"input '{state.name}' needs 'var', a variable name")
    else:
        state.var = var
        state.ref_marks["var"] = node.value_mark("var")  # where `alap check` points about it
    state.validator = _validator(node, problems)
    if "error" in node:
        state.error = _inline(node["error"], node.value_mark("error"), problems, renderer, "error")
    retries = node.get("retries", 3)
    if not isinstance(retries, int) or retries < 0:
        problems.add(node.value_mark("retries"), "'retries' must be a whole number >= 0")
    else:
        state.retries = retries
    state.next = _name(node.get("next"), node.value_mark("next") if "next" in node else node.mark, problems, "next")
    state.ref_marks["next"] = node.value_mark("next") if "next" in node else node.mark
    if "on_fail" in node:
        state.on_fail = _name(node["on_fail"], node.value_mark("on_fail"), problems, "on_fail")
        state.ref_marks["on_fail"] = node.value_mark("on_fail")


def _validator(node: MarkedDict, problems: Collector) -> Validator | None:
    spec = node.get("validate", {"type": "text"})
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        problems.add(node.value_mark("validate"), "'validate' must be a mapping with a 'type'")
        return None
    kind = spec.get("type", "text")
    mark = spec.value_mark("type") if isinstance(spec, MarkedDict) else node.value_mark("validate")
    if not isinstance(kind, str) or kind not in VALIDATOR_PARAMS:
        problems.add(mark, f"unknown validator type {kind!r}{did_you_mean(kind, VALIDATOR_PARAMS)} "
                     f"({', '.join(VALIDATOR_PARAMS)})")
        return None
    if isinstance(spec, MarkedDict):  # a typo such as `minimum:` for `min:` would be ignored at run time
        reject_unknown_keys(spec, ("type", *VALIDATOR_PARAMS[kind]), f"unknown parameter '{{key}}' of the {kind} validator",
                            problems.add)
    try:
        return build_validator(spec)
    except ValueError as exc:
        problems.add(node.value_mark("validate"), str(exc))
        return None


def _parse_routes(state: State, node: MarkedDict, problems: Collector, renderer: Renderer) -> None:
    routes = node.get("routes")
    if not isinstance(routes, MarkedList) or not routes:
        problems.add(node.mark, f"router '{state.name}' needs a non-empty 'routes' list")
        return
    for i, mark, item in _mappings(routes, _ROUTE_FIELDS, "route", "'next' and an optional 'when'", problems):
        target = _name(item.get("next"), item.value_mark("next") if "next" in item else mark, problems, "next")
        when = _condition(item.get("when"), item.value_mark("when"), problems, renderer)
        if target:
            state.routes.append(Route(target, mark, when))
            state.ref_marks[f"route:{i}"] = item.value_mark("next")
    if state.routes and state.routes[-1].when is not None:
        problems.add(routes.mark, f"router '{state.name}' needs a last route without 'when' (the default)")


def _parse_action(state: State, node: MarkedDict, problems: Collector) -> None:
    action = node.get("action")
    if not isinstance(action, str) or not action:
        problems.add(node.mark, f"action state '{state.name}' needs 'action', the name of an action")
    else:
        state.action = action
        state.ref_marks["action"] = node.value_mark("action")
    args = node.get("args", {})
    if not isinstance(args, dict):
        problems.add(node.value_mark("args"), "'args' must be a mapping")
    else:
        state.args = dict(args)
        if isinstance(args, MarkedDict):  # checked against the action's declared parameters by the loader
            state.ref_marks.update({f"arg:{key}": args.mark_of(key) for key in args})
    outcomes = node.get("outcomes", {})
    if not isinstance(outcomes, MarkedDict):
        problems.add(node.value_mark("outcomes") if "outcomes" in node else node.mark, "'outcomes' must be a mapping")
    else:
        for outcome, target in outcomes.items():
            name = _name(target, outcomes.value_mark(outcome), problems, f"outcomes.{outcome}")
            if name:
                state.outcomes[str(outcome)] = name
                state.ref_marks[f"outcome:{outcome}"] = outcomes.value_mark(outcome)
    if "fallback" not in node:
        problems.add(node.mark, f"action state '{state.name}' needs a 'fallback' state (used on timeout or error)")
    else:
        state.fallback = _name(node["fallback"], node.value_mark("fallback"), problems, "fallback")
        state.ref_marks["fallback"] = node.value_mark("fallback")
    timeout = node.get("timeout", 3.0)
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_ACTION_TIMEOUT:
        problems.add(node.value_mark("timeout"),
                     f"'timeout' must be seconds above 0 and at most {MAX_ACTION_TIMEOUT} (the USSD budget)")
    else:
        state.timeout = float(timeout)
    if "save_as" in node:
        state.save_as = str(node["save_as"])
