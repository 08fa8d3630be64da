"""Read YAML flows into `Flow` objects and report every problem as `file:line:col: message`.

Checks: malformed YAML, unknown or missing fields (at every level: top, states, options,
routes, validators and their parameters, action args where the action declares its
parameters, navigation), unknown target state or flow, unknown action or outcome, unreachable
state, duplicate option key, missing template, Jinja syntax errors in texts and conditions.
Unknown names come with a "did you mean" hint. All problems of all files are collected before
failing. One state's fields are parsed by server/engine/state_parser.py.
"""
from __future__ import annotations

from pathlib import Path

from ..msisdn import normalise_digits
from ..render.environment import Renderer
from .actions import ActionRegistry
from .errors import FlowErrors, FlowProblem, Mark
from .model import Flow, Navigation, State
from .state_parser import MAX_ACTION_TIMEOUT, Collector, display_path, flag, parse_state
from .suggest import did_you_mean, reject_unknown_keys
from .yamlmarks import MarkedDict, load_marked

__all__ = ["MAX_ACTION_TIMEOUT", "load_flow_dir", "normalise_keyword", "parse_flow"]

_TOP = ("flow", "code", "codes", "start", "default", "states", "navigation", "sample", "channels", "description",
        "keywords", "interrupt", "sms_default", "resume")
_NAVIGATION = ("back", "home", "more")


def normalise_keyword(word: str) -> str:
    """Keywords match case-insensitively, with Bengali digits read as ASCII."""
    return normalise_digits(word.strip()).casefold()


def parse_flow(path: Path, text: str, renderer: Renderer, registry: ActionRegistry) -> tuple[Flow | None, list[FlowProblem]]:
    file = display_path(path)
    data, problems_found = load_marked(text, file)
    problems = Collector()
    problems.problems.extend(problems_found)
    if data is None:
        if not problems.problems:
            problems.add(Mark(file, 1, 1), "empty flow file")
        return None, problems.problems
    if not isinstance(data, MarkedDict):
        problems.add(Mark(file, 1, 1), "a flow file must be a mapping with 'flow', 'start' and 'states'")
        return None, problems.problems
    reject_unknown_keys(data, _TOP, "unknown top-level field '{key}'", problems.add)
    navigation = _navigation(data, problems)
    states_node = data.get("states")
    if not isinstance(states_node, MarkedDict) or not states_node:
        problems.add(data.mark_of("states") if "states" in data else data.mark, "'states' must be a non-empty mapping")
        return None, problems.problems
    states: dict[str, State] = {}
    for name, node in states_node.items():
        state = parse_state(str(name), node, states_node.mark_of(name), problems, renderer, navigation)
        if state:
            states[state.name] = state
    start = data.get("start")
    if not isinstance(start, str) or start not in states_node:
        hint = did_you_mean(start, states_node) if isinstance(start, str) else ""
        problems.add(data.value_mark("start") if "start" in data else data.mark,
                     f"'start' must name one of the states (got {start!r}){hint}")
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
        resume=flag(data, "resume", problems), yaml=text,
    )
    if isinstance(data.get("sample"), MarkedDict):
        flow.sample_marks = {str(k): data["sample"].mark_of(k) for k in data["sample"]}
    _check_references(flow, registry, problems)
    if start:
        _check_reachable(flow, problems)
    return flow, problems.problems


def _navigation(data: MarkedDict, problems: Collector) -> Navigation:
    node = data.get("navigation")
    if node is None:
        return Navigation()
    if not isinstance(node, MarkedDict):
        problems.add(data.value_mark("navigation"), "'navigation' takes 'back', 'home' and 'more' keys")
        return Navigation()
    reject_unknown_keys(node, _NAVIGATION, "unknown navigation key '{key}'", problems.add)
    nav = Navigation(**{k: str(v) for k, v in node.items() if k in _NAVIGATION})
    if len({nav.back, nav.home, nav.more}) < 3:
        problems.add(data.value_mark("navigation"), "navigation keys must differ from each other")
    return nav


def _check_references(flow: Flow, registry: ActionRegistry, problems: Collector) -> None:
    for state in flow.states.values():
        spec = registry.get(state.action or "") if state.kind == "action" else None
        for ref, mark in state.ref_marks.items():
            kind, _, key = ref.partition(":")
            if kind == "action":
                if spec is None:
                    known = ", ".join(registry.names()) or "none registered"
                    problems.add(mark, f"unknown action '{state.action}'{did_you_mean(state.action, registry.names())}"
                                 f" (known: {known})")
                continue
            if kind == "arg":
                if spec is not None and spec.params is not None and key not in spec.params:
                    takes = ", ".join(sorted(spec.params)) or "none"
                    problems.add(mark, f"action '{spec.name}' has no parameter '{key}'"
                                 f"{did_you_mean(key, spec.params)} (it takes: {takes})")
                continue
            if kind == "outcome" and spec is not None and key not in spec.outcomes:
                problems.add(mark, f"action '{spec.name}' has no outcome '{key}'{did_you_mean(key, spec.outcomes)} "
                             f"(it has: {', '.join(sorted(spec.outcomes))})")
                continue
            target = _ref_target(state, ref)
            if target is not None and target not in flow.states and not target.startswith("@"):
                problems.add(mark, f"unknown target state '{target}'{did_you_mean(target, flow.states)}")


def _ref_target(state: State, ref: str) -> str | None:
    kind, _, key = ref.partition(":")
    if kind == "option":
        return next((o.next for o in state.options if o.index == int(key)), None)
    if kind == "route":
        return state.routes[int(key)].next if int(key) < len(state.routes) else None
    if kind == "outcome":
        return state.outcomes.get(key)
    if kind in ("more", "back"):
        route = getattr(state, kind)
        return route.next if route else None
    return {"next": state.next, "fallback": state.fallback, "on_fail": state.on_fail}.get(kind)


def _check_reachable(flow: Flow, problems: Collector) -> None:
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
        raise FlowErrors([FlowProblem(Mark(display_path(flows_dir), 1, 1), "no flow files (*.yaml) found")])
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
                    problems.append(FlowProblem(mark, f"unknown flow '{target[1:]}' in jump '{target}'"
                                                      f"{did_you_mean(target[1:], names)}"))
    if problems:
        raise FlowErrors(problems)
    return flows
