"""Flow validation at load: every problem as file:line:col, all of them, not only the first."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.actions import build_registry
from server.config import REPO_ROOT
from server.engine.errors import FlowErrors
from server.engine.loader import load_flow_dir
from server.render.environment import Renderer

from tests.conftest import fixture_registry


def load(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    renderer = Renderer(REPO_ROOT / "templates", REPO_ROOT / "locales")
    with pytest.raises(FlowErrors) as caught:
        load_flow_dir(tmp_path, renderer, build_registry())
    return [str(p) for p in caught.value.problems]


def file_of(tmp_path: Path, name: str) -> str:
    return str(tmp_path / name)


BROKEN = """\
flow: broken
start: main
states:
  main:
    kind: menu
    text: "Hello {{ name"
    options:
      - key: 1
        label: "One"
        next: nowhere
      - key: 1
        label: "Again"
        next: done
      - label: "Act"
        next: act
  act:
    kind: action
    action: no.such.action
    outcomes: {ok: done}
    fallback: done
  done:
    kind: end
    template: missing.j2
  island:
    kind: end
    text: "Nobody comes here"
"""


def test_every_problem_is_reported_with_its_position(tmp_path):
    problems = load(tmp_path, {"broken.yaml": BROKEN})
    f = file_of(tmp_path, "broken.yaml")
    assert f"{f}:6:11: template syntax error in text: unexpected end of template, expected 'end of print statement'." in problems
    assert f"{f}:10:15: unknown target state 'nowhere'" in problems
    assert f"{f}:11:14: duplicate option key '1' (first at line 8)" in problems
    assert any(p.startswith(f"{f}:18:13: unknown action 'no.such.action'") for p in problems)
    assert f"{f}:23:15: missing template: template 'missing.j2' not found in {REPO_ROOT / 'templates'}" in problems
    assert f"{f}:24:3: state 'island' is unreachable from start 'main'" in problems
    assert len(problems) == 6


def test_malformed_yaml_reports_the_parser_position(tmp_path):
    problems = load(tmp_path, {"bad.yaml": "flow: x\nstart: a\n  states: {}\n"})
    assert problems == [f"{file_of(tmp_path, 'bad.yaml')}:3:9: malformed YAML: mapping values are not allowed here"]


def test_problems_of_all_files_are_collected(tmp_path):
    problems = load(tmp_path, {
        "a.yaml": "flow: a\nstart: s\nstates:\n  s:\n    kind: end\n    text: ok\n    colour: red\n",
        "b.yaml": "flow: b\nstart: x\nstates:\n  s:\n    kind: wat\n",
    })
    assert f"{file_of(tmp_path, 'a.yaml')}:7:5: state 's': unknown field 'colour' for an end state" in problems
    assert any(p.startswith(f"{file_of(tmp_path, 'b.yaml')}:5:11: state 's': unknown kind 'wat'") for p in problems)
    assert any("'start' must name one of the states" in p for p in problems)


def test_action_and_input_rules(tmp_path):
    problems = load(tmp_path, {"c.yaml": """\
        flow: c
        start: ask
        states:
          ask:
            kind: input
            text: "Amount?"
            var: amount
            validate: {type: amount, min: ten}
            next: act
          act:
            kind: action
            action: operator.detect
            timeout: 30
            outcomes: {ok: done, exploded: done}
          done:
            kind: end
            text: bye
        """})
    f = file_of(tmp_path, "c.yaml")
    assert f"{f}:8:15: amount validator 'min'/'max' must be numbers" in problems
    assert f"{f}:13:14: 'timeout' must be seconds above 0 and at most 4.0 (the USSD budget)" in problems
    assert f"{f}:14:36: action 'operator.detect' has no outcome 'exploded' (it has: ok, unknown)" in problems
    assert f"{f}:11:5: action state 'act' needs a 'fallback' state (used on timeout or error)" in problems


def test_jump_to_unknown_flow(tmp_path):
    problems = load(tmp_path, {"d.yaml": "flow: d\nstart: m\nstates:\n  m:\n    kind: menu\n    text: hi\n"
                                         "    options:\n      - label: go\n        next: '@ghost'\n"})
    assert problems == [f"{file_of(tmp_path, 'd.yaml')}:9:15: unknown flow 'ghost' in jump '@ghost'"]


def test_shipped_flows_are_valid():
    renderer = Renderer(REPO_ROOT / "templates", REPO_ROOT / "locales")
    flows = load_flow_dir(REPO_ROOT / "flows", renderer, fixture_registry())
    assert "demo" in {f.name for f in flows}
