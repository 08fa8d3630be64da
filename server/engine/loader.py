"""Read YAML flows into `Flow` objects and report every problem as `file:line:col: message`.

Checks: malformed YAML, unknown or missing fields, unknown target state, unknown action or
outcome, unreachable state, duplicate option key, missing template, Jinja syntax errors in
texts and conditions. All problems of all files are collected before failing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..msisdn import normalise_digits
from ..render.environment import Renderer, TextError
from .actions import ActionRegistry
from .errors import FlowErrors, FlowProblem, Mark
from .model import KINDS, Flow, Navigation, Option, Route, State, Text
from .validators import build_validator
from .yamlmarks import MarkedDict, MarkedList, load_marked

_COMMON = {"kind", "text", "template", "resume"}
_FIELDS = {
    "menu": _COMMON | {"options"},
    "input": _COMMON | {"var", "validate", "error", "retries", "next", "on_fail"},
    "router": {"kind", "routes"},
    "action": {"kind", "action", "args", "outcomes", "fallback", "timeout", "save_as"},
    "end": _COMMON,
}
# An action runs inside a live USSD hop, under the session lock: keep it well inside the
# gateway's patience and below the lock's lifetime (store.base.LOCK_TTL).
MAX_ACTION_TIMEOUT = 4.0

_TOP = {"flow", "code", "codes", "start", "default", "states", "navigation", "sample", "channels", "description",
        "keywords", "interrupt", "sms_default", "resume"}


def normalise_keyword(word: str) -> str:
    """Keywords match case-insensitively, with Bengali digits read as ASCII."""
    return normalise_digits(word.strip()).casefold()


class _Collector:
    def __init__(self) -> None:
        self.problems: list[FlowProblem] = []

    def add(self, mark: Mark, message: str) -> None:
        self.problems.append(FlowProblem(mark, message))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _text(node: MarkedDict, problems: _Collector, *, required: bool, renderer: Renderer) -> Text | None:
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
                where = Mark(_display(renderer.templates_dir / name), exc.lineno, 1) if exc.lineno else mark
                problems.add(where, f"{exc}" if exc.lineno else f"missing template: {exc}")
                break
        return Text(mark, template=name)
    if "text" in node:
        return _inline(node["text"], node.value_mark("text"), problems, renderer, "text")
    if required:
        problems.add(node.mark, "needs a 'text' or a 'template'")
    return None


def _inline(value: Any, mark: Mark, problems: _Collector, renderer: Renderer, what: str) -> Text | None:
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


def _condition(value: Any, mark: Mark, problems: _Collector, renderer: Renderer) -> str | None:
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


def _name(value: Any, mark: Mark, problems: _Collector, what: str) -> str | None:
    if isinstance(value, str) and value:
        return value
    problems.add(mark, f"'{what}' must be a state name")
    return None


def _parse_state(name: str, node: Any, mark: Mark, problems: _Collector, renderer: Renderer,
                 navigation: Navigation) -> State | None:
    if not isinstance(node, MarkedDict):
        problems.add(mark, f"state '{name}' must be a mapping")
        return None
    kind = node.get("kind")
    if kind not in KINDS:
        problems.add(node.value_mark("kind") if "kind" in node else node.mark,
                     f"state '{name}': unknown kind {kind!r} (one of {', '.join(KINDS)})")
        return None
    for key in node:
        if key not in _FIELDS[kind]:
            problems.add(node.mark_of(key), f"state '{name}': unknown field '{key}' for a {kind} state")
    state = State(name=name, kind=kind, mark=mark, resume=_flag(node, "resume", problems))
    if kind in ("menu", "input", "end"):
        state.text = _text(node, problems, required=True, renderer=renderer)
    if kind == "menu":
        _parse_options(state, node, problems, renderer, navigation)
    elif kind == "input":
        _parse_input(state, node, problems, renderer)
    elif kind == "router":
        _parse_routes(state, node, problems, renderer)
    elif kind == "action":
        _parse_action(state, node, problems)
    return state


def _parse_options(state: State, node: MarkedDict, problems: _Collector, renderer: Renderer,
                   navigation: Navigation) -> None:
    options = node.get("options")
    if not isinstance(options, MarkedList) or not options:
        problems.add(node.mark_of("options") if "options" in node else node.mark,
                     f"menu '{state.name}' needs a non-empty 'options' list")
        return
    seen: dict[str, Mark] = {}
    duplicated: set[str] = set()
    reserved = {navigation.back, navigation.home, navigation.more}
    for i, item in enumerate(options):
        mark = options.mark_at(i)
        if not isinstance(item, MarkedDict):
            problems.add(mark, "an option must be a mapping with 'label' and 'next'")
            continue
        for key in item:
            if key not in ("label", "next", "key", "when", "set"):
                problems.add(item.mark_of(key), f"unknown option field '{key}'")
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


def _parse_input(state: State, node: MarkedDict, problems: _Collector, renderer: Renderer) -> None:
    var = node.get("var")
    if not isinstance(var, str) or not var.isidentifier():
        problems.add(node.value_mark("var") if "var" in node else node.mark,
                     f"input '{state.name}' needs 'var', a variable name")
    else:
        state.var = var
    spec = node.get("validate", {"type": "text"})
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        problems.add(node.value_mark("validate"), "'validate' must be a mapping with a 'type'")
    else:
        try:
            state.validator = build_validator(spec)
        except ValueError as exc:
            problems.add(node.value_mark("validate"), str(exc))
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


def _parse_routes(state: State, node: MarkedDict, problems: _Collector, renderer: Renderer) -> None:
    routes = node.get("routes")
    if not isinstance(routes, MarkedList) or not routes:
        problems.add(node.mark, f"router '{state.name}' needs a non-empty 'routes' list")
        return
    for i, item in enumerate(routes):
        mark = routes.mark_at(i)
        if not isinstance(item, MarkedDict):
            problems.add(mark, "a route must be a mapping with 'next' and an optional 'when'")
            continue
        for key in item:
            if key not in ("next", "when"):
                problems.add(item.mark_of(key), f"unknown route field '{key}'")
        target = _name(item.get("next"), item.value_mark("next") if "next" in item else mark, problems, "next")
        when = _condition(item.get("when"), item.value_mark("when"), problems, renderer)
        if target:
            state.routes.append(Route(target, mark, when))
            state.ref_marks[f"route:{i}"] = item.value_mark("next")
    if state.routes and state.routes[-1].when is not None:
        problems.add(routes.mark, f"router '{state.name}' needs a last route without 'when' (the default)")


def _parse_action(state: State, node: MarkedDict, problems: _Collector) -> None:
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


def parse_flow(path: Path, text: str, renderer: Renderer, registry: ActionRegistry) -> tuple[Flow | None, list[FlowProblem]]:
    file = _display(path)
    data, problems_found = load_marked(text, file)
    problems = _Collector()
    problems.problems.extend(problems_found)
    if data is None:
        if not problems.problems:
            problems.add(Mark(file, 1, 1), "empty flow file")
        return None, problems.problems
    if not isinstance(data, MarkedDict):
        problems.add(Mark(file, 1, 1), "a flow file must be a mapping with 'flow', 'start' and 'states'")
        return None, problems.problems
    for key in data:
        if key not in _TOP:
            problems.add(data.mark_of(key), f"unknown top-level field '{key}'")
    navigation = _navigation(data, problems)
    states_node = data.get("states")
    if not isinstance(states_node, MarkedDict) or not states_node:
        problems.add(data.mark_of("states") if "states" in data else data.mark, "'states' must be a non-empty mapping")
        return None, problems.problems
    states: dict[str, State] = {}
    for name, node in states_node.items():
        state = _parse_state(str(name), node, states_node.mark_of(name), problems, renderer, navigation)
        if state:
            states[state.name] = state
    start = data.get("start")
    if not isinstance(start, str) or start not in states_node:
        problems.add(data.value_mark("start") if "start" in data else data.mark,
                     f"'start' must name one of the states (got {start!r})")
        start = None
    codes = data.get("codes", data.get("code", ()))
    codes = tuple(str(c) for c in codes) if isinstance(codes, list) else ((str(codes),) if codes else ())
    channels = data.get("channels", ["ussd"])
    keywords = data.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, (str, int)) and str(k).strip() for k in keywords):
        problems.add(data.value_mark("keywords"), "'keywords' must be a list of words")
        keywords = []
    flow = Flow(
        name=str(data.get("flow", path.stem)), file=file, start=start or "", states=states, codes=codes,
        default=bool(data.get("default", False)), navigation=navigation,
        channels=tuple(channels) if isinstance(channels, list) else ("ussd",),
        sample=dict(data.get("sample") or {}), mark=data.mark,
        keywords=tuple(normalise_keyword(str(k)) for k in keywords),
        interrupt=bool(data.get("interrupt", False)), sms_default=bool(data.get("sms_default", False)),
        resume=_flag(data, "resume", problems), yaml=text,
    )
    _check_references(flow, registry, problems)
    if start:
        _check_reachable(flow, problems)
    return flow, problems.problems


def _flag(node: MarkedDict, key: str, problems: _Collector, default: bool = True) -> bool:
    value = node.get(key, default)
    if not isinstance(value, bool):
        problems.add(node.value_mark(key), f"'{key}' must be true or false")
        return default
    return value


def _navigation(data: MarkedDict, problems: _Collector) -> Navigation:
    node = data.get("navigation")
    if node is None:
        return Navigation()
    if not isinstance(node, MarkedDict) or any(k not in ("back", "home", "more") for k in node):
        problems.add(data.value_mark("navigation"), "'navigation' takes 'back', 'home' and 'more' keys")
        return Navigation()
    values = {k: str(v) for k, v in node.items()}
    nav = Navigation(**values)
    if len({nav.back, nav.home, nav.more}) < 3:
        problems.add(data.value_mark("navigation"), "navigation keys must differ from each other")
    return nav


def _check_references(flow: Flow, registry: ActionRegistry, problems: _Collector) -> None:
    for state in flow.states.values():
        for ref, mark in state.ref_marks.items():
            target = _ref_target(state, ref)
            if ref == "action":
                spec = registry.get(state.action or "")
                if spec is None:
                    known = ", ".join(registry.names()) or "none registered"
                    problems.add(mark, f"unknown action '{state.action}' (known: {known})")
                else:
                    for outcome in state.outcomes:
                        if outcome not in spec.outcomes:
                            problems.add(state.ref_marks[f"outcome:{outcome}"],
                                         f"action '{spec.name}' has no outcome '{outcome}' "
                                         f"(it has: {', '.join(sorted(spec.outcomes))})")
                continue
            if target is not None and target not in flow.states and not target.startswith("@"):
                problems.add(mark, f"unknown target state '{target}'")


def _ref_target(state: State, ref: str) -> str | None:
    kind, _, key = ref.partition(":")
    if kind == "option":
        return next((o.next for o in state.options if o.index == int(key)), None)
    if kind == "route":
        return state.routes[int(key)].next if int(key) < len(state.routes) else None
    if kind == "outcome":
        return state.outcomes.get(key)
    return {"next": state.next, "fallback": state.fallback, "on_fail": state.on_fail}.get(kind)


def _check_reachable(flow: Flow, problems: _Collector) -> None:
    seen = {flow.start}
    todo = [flow.start]
    while todo:
        state = flow.states.get(todo.pop())
        for target in state.targets() if state else ():
            if target in flow.states and target not in seen:
                seen.add(target)
                todo.append(target)
    for name, state in flow.states.items():
        if name not in seen:
            problems.add(state.mark, f"state '{name}' is unreachable from start '{flow.start}'")


def load_flow_dir(flows_dir: Path, renderer: Renderer, registry: ActionRegistry) -> list[Flow]:
    """Load every *.yaml / *.yml flow; raise FlowErrors listing every problem of every file."""
    flows_dir = Path(flows_dir)
    problems: list[FlowProblem] = []
    flows: list[Flow] = []
    paths = sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")])
    if not paths:
        raise FlowErrors([FlowProblem(Mark(_display(flows_dir), 1, 1), "no flow files (*.yaml) found")])
    names: dict[str, str] = {}
    for path in paths:
        flow, found = parse_flow(path, path.read_text(encoding="utf-8"), renderer, registry)
        problems.extend(found)
        if flow is None:
            continue
        if flow.name in names:
            problems.append(FlowProblem(flow.mark or Mark(flow.file, 1, 1),
                                        f"flow name '{flow.name}' already used by {names[flow.name]}"))
        names[flow.name] = flow.file
        flows.append(flow)
    keyword_owner: dict[str, str] = {}
    for flow in flows:
        for keyword in flow.keywords:
            if keyword in keyword_owner:
                problems.append(FlowProblem(flow.mark or Mark(flow.file, 1, 1),
                                            f"SMS keyword '{keyword}' is also claimed by {keyword_owner[keyword]}"))
            keyword_owner[keyword] = flow.file
    for flow in flows:  # jumps between flows ("@name") can only be checked once all are loaded
        for state in flow.states.values():
            for ref, mark in state.ref_marks.items():
                target = _ref_target(state, ref)
                if target and target.startswith("@") and target[1:] not in names:
                    problems.append(FlowProblem(mark, f"unknown flow '{target[1:]}' in jump '{target}'"))
    if problems:
        raise FlowErrors(problems)
    return flows
