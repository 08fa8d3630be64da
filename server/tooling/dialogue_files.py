"""Conversation test files (`alap test`): the YAML format, read into `Dialogue`s with every
problem as `file:line:col: message`. Running them is server/tooling/convtest.py's job.

A test file holds `dialogues:`; each starts with a move (dial a USSD code, sms a message, or
push a flow as the app does) and then takes steps:

    flow: demo                            # optional, for the reader; so is `description`
    data:                                 # optional: YAML anchors (&x / *x) the dialogues share
      parcel: &parcel {id: ECR1022001175478, status: Delivered, pages: 0, history: []}
    dialogues:
      - name: split a bill                # required, unique in the file
        dial: "*213#"                     # shortcuts like *213*2# replay inputs; or instead:
                                          #   sms: "TRACK ECR123"  (a keyword and its args), or
                                          #   push: parcel_notice + vars: {...}  (mt-init, POST /push/ussd)
        language: en                      # the subscriber's saved language (default: ALAP_DEFAULT_LANGUAGE)
        address: tel:8801812345678        # default; a masked id gives msisdn None, as in production
        actions:                          # canned results for this dialogue, replacing the real actions
          parcel.track: {outcome: found, vars: {parcel: {...}}}
          offers.list: [{outcome: busy}, {outcome: ok, vars: {...}}]   # successive calls; the last repeats
          balance.query: {fail: timeout}  # or `error`: the engine takes the state's fallback
        steps:
          - screen: "Welcome to Alap..."   # no send/dial: check the screen showing now (the dial's)
          - send: "2"                      # what the subscriber types
            contains: "bill amount"        # or a list; also: screen (exact), regex (re.search,
            final: false                   #   multiline), not_contains, final, encoding ("440"/"16"),
            calls: [operator.detect]       #   calls: actions run by this step's hop, in order;
            language: en                   #   language / opted_out: the profile after this step
          - dial: "*213#"                  # a new session, with the language the last one saved
          - sms: "HELP"                    # an SMS: a keyword, or the next input of an open SMS conversation
        calls: [operator.detect]           # every action run in the dialogue, in order

A `calls` entry is an action name or `{name: {arg: value}}` to also check the rendered args it
got (those named only).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bdapps.payloads import msisdn_of
from ..engine.errors import FlowProblem, Mark
from ..engine.suggest import did_you_mean
from ..engine.yamlmarks import MarkedDict, MarkedList, load_marked

DEFAULT_ADDRESS = "tel:8801812345678"
MOVES = ("dial", "send", "sms", "push")  # what a subscriber (or the app, for push) does
_DIALOGUE_KEYS = {"name", "dial", "sms", "push", "vars", "language", "address", "msisdn", "actions", "steps",
                  "calls"}
_CHECKS = {"screen", "contains", "not_contains", "regex", "final", "encoding", "calls", "language", "opted_out"}
_RESULT_KEYS = {"outcome", "vars", "language", "fail"}


class ConvTestError(Exception):
    """A malformed test file: every problem as `file:line:col: message`."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Move:
    """dial a USSD code, send a USSD reply, sms a message, or push a flow (mt-init) with vars."""

    kind: str
    value: str
    vars: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind} {self.value!r}"


@dataclass
class Step:
    mark: Mark
    move: Move | None = None  # None: check the screen showing now
    checks: dict[str, Any] = field(default_factory=dict)

    def describe(self, number: int) -> str:
        return f"step {number} ({self.move or 'check'})"


@dataclass
class Dialogue:
    name: str
    mark: Mark
    start: Move
    language: str | None = None
    address: str = DEFAULT_ADDRESS
    msisdn: str | None = None
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    calls: list[Any] | None = None

    @property
    def id(self) -> str:
        return f"{Path(self.mark.file).name}:{self.mark.line} {self.name}"


# -- reading test files --------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """YAML's marked containers as plain dicts/lists: session vars must encode as JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_dialogues(path: Path) -> list[Dialogue]:
    """Parse one test file; raises ConvTestError listing every problem."""
    file = str(path)
    data, problems = load_marked(Path(path).read_text(encoding="utf-8"), file)
    problems = list(problems)
    dialogues: list[Dialogue] = []
    if problems:
        raise ConvTestError(problems)
    items = data.get("dialogues") if isinstance(data, MarkedDict) else None
    if not isinstance(items, MarkedList) or not items:
        raise ConvTestError([FlowProblem(Mark(file, 1, 1), "a test file needs a non-empty 'dialogues' list")])
    for key in data:
        if key not in ("dialogues", "flow", "description", "data"):  # data: YAML anchors shared by dialogues
            problems.append(FlowProblem(data.mark_of(key), f"unknown top-level field '{key}'"
                                                            f"{did_you_mean(key, ('dialogues', 'flow', 'description', 'data'))}"))
    names: set[str] = set()
    for i, node in enumerate(items):
        dialogue = _dialogue(node, items.mark_at(i), problems)
        if dialogue is None:
            continue
        if dialogue.name in names:
            problems.append(FlowProblem(dialogue.mark, f"duplicate dialogue name '{dialogue.name}'"))
        names.add(dialogue.name)
        dialogues.append(dialogue)
    if problems:
        raise ConvTestError(problems)
    return dialogues


def _dialogue(node: Any, mark: Mark, problems: list[FlowProblem]) -> Dialogue | None:
    def bad(where: Mark, message: str) -> None:
        problems.append(FlowProblem(where, message))

    if not isinstance(node, MarkedDict):
        bad(mark, "a dialogue must be a mapping with 'name', 'dial' and 'steps'")
        return None
    for key in node:
        if key not in _DIALOGUE_KEYS:
            bad(node.mark_of(key), f"unknown dialogue field '{key}'{did_you_mean(key, _DIALOGUE_KEYS)} "
                f"(one of {', '.join(sorted(_DIALOGUE_KEYS))})")
    starts = [k for k in ("dial", "sms", "push") if k in node]
    if not isinstance(node.get("name"), str) or len(starts) != 1 or not isinstance(node[starts[0]], (str, int)):
        bad(mark, "a dialogue needs a 'name' and one of 'dial' (a USSD code), 'sms' (a message) or 'push' (a flow)")
        return None
    start = Move(starts[0], str(node[starts[0]]), _plain(node.get("vars") or {}))
    if "vars" in node and start.kind != "push":
        bad(node.mark_of("vars"), "'vars' go with 'push' (the variables the app starts the flow with)")
    dialogue = Dialogue(name=node["name"], mark=mark, start=start,
                        language=node.get("language"), address=str(node.get("address", DEFAULT_ADDRESS)))
    dialogue.msisdn = node["msisdn"] if "msisdn" in node else msisdn_of(dialogue.address)
    actions = node.get("actions") or MarkedDict()
    if not isinstance(actions, MarkedDict):
        bad(node.value_mark("actions"), "'actions' maps action names to a canned result (or a list of them)")
    else:
        for name, results in actions.items():
            listed = results if isinstance(results, list) else [results]
            for result in listed:
                if not isinstance(result, MarkedDict) or any(k not in _RESULT_KEYS for k in result):
                    bad(actions.value_mark(name), f"a canned result of '{name}' is a mapping of "
                        f"{', '.join(sorted(_RESULT_KEYS))}")
            dialogue.actions[str(name)] = [_plain(r) for r in listed]
    steps = node.get("steps") or []
    if not isinstance(steps, list):
        bad(node.value_mark("steps"), "'steps' must be a list")
        steps = []
    for i, item in enumerate(steps):
        step = _step(item, steps.mark_at(i) if isinstance(steps, MarkedList) else mark, bad)
        if step:
            dialogue.steps.append(step)
    if "calls" in node:
        dialogue.calls = _plain(node["calls"]) if isinstance(node["calls"], list) else None
        if dialogue.calls is None:
            bad(node.value_mark("calls"), "'calls' must be a list of action names")
    return dialogue


def _step(item: Any, mark: Mark, bad: Any) -> Step | None:
    if not isinstance(item, MarkedDict):
        bad(mark, "a step must be a mapping (send/dial/sms/push and what to expect)")
        return None
    for key in item:
        if key not in _CHECKS | set(MOVES) | {"vars"}:
            bad(item.mark_of(key), f"unknown step field '{key}'{did_you_mean(key, {*_CHECKS, *MOVES, 'vars'})} "
                f"({', '.join(MOVES)}, vars, "
                f"{', '.join(sorted(_CHECKS))})")
    moves = [k for k in MOVES if k in item]
    if len(moves) > 1:
        bad(mark, f"a step makes one move, not {' and '.join(moves)}")
    step = Step(mark=mark)
    if moves:
        value = item[moves[0]]
        step.move = Move(moves[0], "" if value is None else str(value), _plain(item.get("vars") or {}))
    step.checks = {k: _plain(v) for k, v in item.items() if k in _CHECKS}
    if "regex" in step.checks:
        for pattern in as_list(step.checks["regex"]):
            try:
                re.compile(pattern)
            except re.error as exc:
                bad(item.value_mark("regex"), f"invalid regex {pattern!r}: {exc}")
    return step


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
