"""`alap graph FLOW`: a flow's states and transitions as Mermaid (default) or Graphviz DOT.

Shapes say what a state does: screens are boxes (menu: rectangle, input: parallelogram, end:
stadium / double border), routers are diamonds, actions hexagons, jumps to another flow
(`@flow`) subroutine boxes. Edges: option labels (English source, with their key and `when`),
input `var`s, router conditions; action outcomes and fallbacks are dashed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..engine.model import Flow, State


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    dashed: bool = False


def edges(flow: Flow) -> list[Edge]:
    """Every transition of the flow, in state order."""
    out: list[Edge] = []
    for state in flow.states.values():
        number = 0
        for option in state.options:
            if option.key is None:
                number += 1
            key = option.key if option.key is not None else str(number)
            label = f"{key}. {option.label.source or ''}"
            if option.when:
                label += f"\nif {option.when}"
            out.append(Edge(state.name, option.next, label))
        for key, name, paging in ((flow.navigation.more, "More", state.more), (flow.navigation.back, "Back", state.back)):
            if paging:
                out.append(Edge(state.name, paging.next, f"{key}. {name}" + (f"\nif {paging.when}" if paging.when else "")))
        if state.kind == "input" and state.next:
            out.append(Edge(state.name, state.next, state.var or ""))
        if state.on_fail:
            out.append(Edge(state.name, state.on_fail, "too many errors", dashed=True))
        for route in state.routes:
            out.append(Edge(state.name, route.next, f"if {route.when}" if route.when else "else"))
        for outcome, target in state.outcomes.items():
            out.append(Edge(state.name, target, outcome, dashed=True))
        if state.kind == "action" and state.fallback:
            out.append(Edge(state.name, state.fallback, "fallback", dashed=True))
    return out


def _node_text(state: State) -> str:
    if state.kind == "action":
        return f"{state.name}\n{state.action}"
    if state.kind == "router":
        return state.name
    return f"{state.name}\n({state.kind})"


def _jumps(flow: Flow) -> list[str]:
    return sorted({e.target for e in edges(flow) if e.target.startswith("@")})


# -- Mermaid -------------------------------------------------------------------------------------

_MERMAID_RESERVED = {"end", "graph", "subgraph", "flowchart", "style", "class", "classDef", "click",
                     "default", "linkStyle", "direction"}
_SHAPES = {"menu": ('["', '"]'), "input": ('[/"', '"/]'), "end": ('(["', '"])'),
           "router": ('{"', '"}'), "action": ('{{"', '"}}')}


# Mermaid class names; "end" is a keyword there.
_CLASS = {"menu": "menu", "input": "input", "end": "final", "router": "router", "action": "action"}


def _mermaid_id(name: str) -> str:
    if name.startswith("@"):
        return "flow_" + re.sub(r"\W", "_", name[1:])
    clean = re.sub(r"\W", "_", name)
    return clean if clean == name and clean not in _MERMAID_RESERVED and clean[:1].isalpha() else f"s_{clean}"


def _mermaid_text(text: str) -> str:
    """Mermaid entity codes for what would end a label or be read as markup; newlines as <br/>."""
    out = text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return out.replace("|", "#124;").replace("\n", "<br/>")


def to_mermaid(flow: Flow) -> str:
    lines = [f"%% flow {flow.name}" + (f" ({', '.join(flow.codes)})" if flow.codes else ""), "flowchart TD"]
    lines.append(f'  start_(("{_mermaid_text(" ".join(flow.codes) or "start")}")) --> {_mermaid_id(flow.start)}')
    for state in flow.states.values():
        left, right = _SHAPES[state.kind]
        lines.append(f"  {_mermaid_id(state.name)}{left}{_mermaid_text(_node_text(state))}{right}:::{_CLASS[state.kind]}")
    for jump in _jumps(flow):
        lines.append(f'  {_mermaid_id(jump)}[["{_mermaid_text(jump + " flow")}"]]:::jump')
    for edge in edges(flow):
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {_mermaid_id(edge.source)} {arrow}{label} {_mermaid_id(edge.target)}")
    lines += [
        "  classDef menu fill:#e8f1ff,stroke:#3a6ea5",
        "  classDef input fill:#fff6e0,stroke:#b58a1b",
        "  classDef final fill:#eeeeee,stroke:#555555",
        "  classDef router fill:#f3e8ff,stroke:#7a4fa3",
        "  classDef action fill:#e6f7ec,stroke:#2e8b57",
        "  classDef jump fill:#ffffff,stroke:#999999,stroke-dasharray:4 3",
    ]
    return "\n".join(lines) + "\n"


# -- Graphviz DOT --------------------------------------------------------------------------------

_DOT_SHAPES = {"menu": 'shape=box, style="rounded,filled", fillcolor="#e8f1ff"',
               "input": 'shape=parallelogram, style=filled, fillcolor="#fff6e0"',
               "end": 'shape=box, peripheries=2, style="rounded,filled", fillcolor="#eeeeee"',
               "router": 'shape=diamond, style=filled, fillcolor="#f3e8ff"',
               "action": 'shape=hexagon, style=filled, fillcolor="#e6f7ec"'}


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(flow: Flow) -> str:
    lines = [f"digraph {_dot(flow.name)} {{", "  rankdir=TB;", '  node [fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];',
             f'  "__start" [shape=circle, label={_dot(" ".join(flow.codes) or "start")}];',
             f"  \"__start\" -> {_dot(flow.start)};"]
    for state in flow.states.values():
        lines.append(f"  {_dot(state.name)} [{_DOT_SHAPES[state.kind]}, label={_dot(_node_text(state))}];")
    for jump in _jumps(flow):
        lines.append(f"  {_dot(jump)} [shape=component, style=dashed, label={_dot(jump + ' flow')}];")
    for edge in edges(flow):
        attrs = [f"label={_dot(edge.label)}"] if edge.label else []
        if edge.dashed:
            attrs.append("style=dashed")
        lines.append(f"  {_dot(edge.source)} -> {_dot(edge.target)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def find_flow_file(flows_dir: Path, name: str) -> Path | None:
    """FLOW as a path to a YAML file, or the name of a flow in flows_dir (file stem or `flow:`)."""
    given = Path(name)
    if given.suffix in (".yaml", ".yml") and given.is_file():
        return given
    for suffix in (".yaml", ".yml"):
        if (flows_dir / f"{name}{suffix}").is_file():
            return flows_dir / f"{name}{suffix}"
    for path in sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]):
        if re.search(rf"^flow:\s*['\"]?{re.escape(name)}['\"]?\s*(#.*)?$", path.read_text(encoding="utf-8"), re.M):
            return path
    return None
