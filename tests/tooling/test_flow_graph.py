"""`alap graph`: Mermaid and DOT drawings of a flow's states and transitions."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from server.actions import build_registry
from server.config import REPO_ROOT
from server.engine.loader import load_flow_dir
from server.render.environment import Renderer
from server.tooling.graph import edges, find_flow_file, to_dot, to_mermaid
from server.upstreams import Upstreams

from tests.conftest import test_settings as settings_for
from tests.optional_tools import require


@pytest.fixture(scope="module")
def flows():
    settings = settings_for()
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    loaded = load_flow_dir(settings.flows_dir, renderer, build_registry(Upstreams.from_settings(settings)))
    return {f.name: f for f in loaded}


def test_every_transition_is_an_edge(flows) -> None:
    for flow in flows.values():
        drawn = {(e.source, e.target) for e in edges(flow)}
        for state in flow.states.values():
            for target in state.targets():
                assert (state.name, target) in drawn, (flow.name, state.name, target)


def test_mermaid_of_the_demo(flows) -> None:
    text = to_mermaid(flows["demo"])
    assert text.startswith("%% flow demo (*213#)\nflowchart TD\n")
    assert "  main[\"main<br/>(menu)\"]:::menu" in text
    assert "  ask_number[/\"ask_number<br/>(input)\"/]:::input" in text  # inputs: parallelograms
    assert "  detect_operator{{\"detect_operator<br/>operator.detect\"}}:::action" in text  # actions: hexagons
    assert "  split_route{\"split_route\"}:::router" in text  # routers: diamonds
    assert "  about([\"about<br/>(end)\"]):::final" in text
    assert "  main -->|\"1. Find a number's operator\"| ask_number" in text  # English option labels
    assert "  detect_operator -.->|\"unknown\"| operator_unknown" in text  # outcomes dashed
    assert "  detect_operator -.->|\"fallback\"| busy" in text
    assert "  flow_parcel[[\"@parcel flow\"]]:::jump" in text  # jumps to other flows
    assert re.search(r"  main -->\|\"\d\. Track a parcel\"\| flow_parcel", text)
    # Characters that would end a label are entity codes.
    assert "total#124;divided(people) #lt; 1" in text


def test_mermaid_ids_never_use_keywords() -> None:
    from server.tooling.graph import _mermaid_id

    assert _mermaid_id("end") == "s_end" and _mermaid_id("main") == "main" and _mermaid_id("a-b") == "s_a_b"
    assert _mermaid_id("@parcel") == "flow_parcel"


def test_dot_of_the_parcel_flow(flows) -> None:
    text = to_dot(flows["parcel"])
    assert text.startswith('digraph "parcel" {') and text.rstrip().endswith("}")
    assert '"track" [shape=hexagon' in text and '"ask_ref" [shape=parallelogram' in text
    assert '"track" -> "not_found" [label="not_found", style=dashed];' in text
    assert '"history" -> "history_next" [label="98. More\\nif history_page + 1 < parcel.pages"];' in text


def test_dot_renders_with_graphviz(flows) -> None:
    dot = require("dot", "graphviz", "rendering `alap graph --format dot`")
    result = subprocess.run([dot, "-Tsvg"], input=to_dot(flows["demo"]), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_find_flow_file_by_name_stem_or_path(tmp_path) -> None:
    flows_dir = REPO_ROOT / "flows"
    assert find_flow_file(flows_dir, "demo") == flows_dir / "demo.yaml"
    assert find_flow_file(flows_dir, str(flows_dir / "parcel.yaml")) == flows_dir / "parcel.yaml"
    (tmp_path / "renamed.yaml").write_text("flow: other\nstart: s\n", encoding="utf-8")
    assert find_flow_file(tmp_path, "other") == tmp_path / "renamed.yaml"
    assert find_flow_file(tmp_path, "nothing") is None


def test_cli_writes_mermaid_and_dot(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALAP_")}
    out = tmp_path / "demo.dot"
    run = subprocess.run([sys.executable, "-m", "server", "graph", "demo", "--format", "dot", "-o", str(out)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert out.read_text(encoding="utf-8").startswith('digraph "demo"')
    mermaid = subprocess.run([sys.executable, "-m", "server", "graph", "balance"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert mermaid.returncode == 0 and "flowchart TD" in mermaid.stdout
    missing = subprocess.run([sys.executable, "-m", "server", "graph", "nope"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "no flow 'nope'" in missing.stderr
