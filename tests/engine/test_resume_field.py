"""`resume:` in a flow file: a flag on the flow and on screen states, checked at load."""
from __future__ import annotations

from pathlib import Path

import pytest

from server.actions import build_registry
from server.config import REPO_ROOT
from server.engine.errors import FlowErrors
from server.engine.loader import load_flow_dir
from server.render.environment import Renderer

FLOW = """flow: form
code: "*301#"
resume: {flow}
start: f1
states:
  f1: {{kind: input, text: "Your name?", var: name, next: f2, resume: {state}}}
  f2: {{kind: end, text: "Thanks."}}
"""


def load(tmp_path: Path, flow: str, state: str):
    (tmp_path / "form.yaml").write_text(FLOW.format(flow=flow, state=state))
    return load_flow_dir(tmp_path, Renderer(REPO_ROOT / "templates", REPO_ROOT / "locales"), build_registry())[0]


def test_resume_flags_default_to_true_and_are_read(tmp_path):
    flow = load(tmp_path, "false", "false")
    assert flow.resume is False and flow.states["f1"].resume is False and flow.states["f2"].resume is True
    flow = load(tmp_path, "true", "true")
    assert flow.resume is True and flow.states["f1"].resume is True


def test_a_resume_that_is_not_a_flag_is_reported_where_it_is(tmp_path):
    with pytest.raises(FlowErrors) as caught:
        load(tmp_path, "maybe", "1")
    problems = [str(p) for p in caught.value.problems]
    assert any(p.endswith(":3:9: 'resume' must be true or false") for p in problems), problems
    assert any(":6:" in p and "'resume' must be true or false" in p for p in problems), problems
