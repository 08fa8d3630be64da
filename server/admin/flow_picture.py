"""A flow as a picture with its funnel numbers, laid out here in Python (no Graphviz, no
JavaScript): a simple layered layout, top to bottom.

Layers are the shortest distance from the start state; within a layer, states are ordered by the
mean position of the states that lead to them (one barycentre pass, enough for menu trees).
Edges are the flow's transitions (server/tooling/graph.py) plus any observed ones the YAML does
not name (back `0`, home `00`); their width follows their share of the source's entries. The
template (templates/flow_picture.svg) draws what this module places, escaping every label.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..engine.model import Flow
from ..store.funnel import FunnelCounts
from ..tooling.graph import edges as flow_edges

NODE_W, NODE_H = 168, 64
GAP_X, GAP_Y = 22, 96
MARGIN = 24


@dataclass
class Node:
    name: str
    kind: str  # menu, input, router, action, end, or "flow" for a jump target (@flow)
    layer: int
    x: float = 0.0
    y: float = 0.0
    entered: int = 0
    abandoned: int = 0
    failed: int = 0
    heaviest: bool = False

    @property
    def dropped(self) -> int:
        return self.abandoned + self.failed


@dataclass
class Edge:
    source: str
    target: str
    count: int
    share: float  # of the source's entries, 0..1
    declared: bool  # named in the YAML (else only observed: back / home navigation)
    path: str = ""
    label_x: float = 0.0
    label_y: float = 0.0
    width: float = 1.0
    backwards: bool = False


@dataclass
class Picture:
    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    heaviest: Node | None = None


def _layers(start: str, names: list[str], targets: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layers of the graph without its back edges (found depth-first from the
    start), so a state sits below every state that leads to it on a forward path."""
    forward: dict[str, list[str]] = defaultdict(list)
    state = {}  # name -> 1 on the DFS stack, 2 done
    for root in [start] + names:
        if root in state:
            continue
        stack = [(root, iter(targets[root]))]
        state[root] = 1
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[name] = 2
                stack.pop()
            elif state.get(child) != 1:  # not an edge back up the stack
                forward[name].append(child)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(targets[child])))
    order: list[str] = []  # topological, by depth-first finish order reversed
    seen: set[str] = set()
    for root in [start] + names:
        if root in seen:
            continue
        seen.add(root)
        stack2 = [(root, iter(forward[root]))]
        while stack2:
            name, children = stack2[-1]
            child = next(children, None)
            if child is None:
                order.append(name)
                stack2.pop()
            elif child not in seen:
                seen.add(child)
                stack2.append((child, iter(forward[child])))
    depth = {name: 0 for name in names}
    for name in reversed(order):
        for child in forward[name]:
            depth[child] = max(depth[child], depth[name] + 1)
    return depth


def lay_out(flow: Flow, counts: FunnelCounts) -> Picture:
    declared = {(e.source, e.target) for e in flow_edges(flow)}
    observed = {pair for pair, n in counts.transitions.items() if n}
    names = list(flow.states) + sorted({t for _, t in declared | observed if t.startswith("@")})
    known = set(names)
    pairs = [p for p in sorted(declared | observed, key=lambda p: (names.index(p[0]) if p[0] in known else 0, p[1]))
             if p[0] in known and p[1] in known and p[0] != p[1]]
    targets: dict[str, list[str]] = defaultdict(list)
    for source, target in pairs:
        if (source, target) in declared:
            targets[source].append(target)
    layer_of = _layers(flow.start, names, targets)

    nodes = {name: Node(name, flow.states[name].kind if name in flow.states else "flow", layer_of[name],
                        entered=counts.entered.get(name, 0), abandoned=counts.abandoned_at.get(name, 0),
                        failed=counts.failed_at.get(name, 0)) for name in names}
    rows: dict[int, list[Node]] = defaultdict(list)
    for name in names:
        rows[nodes[name].layer].append(nodes[name])
    parents: dict[str, list[str]] = defaultdict(list)
    for source, target in pairs:
        if nodes[source].layer < nodes[target].layer:
            parents[target].append(source)
    widest = max(len(row) for row in rows.values())
    width = 2 * MARGIN + widest * NODE_W + (widest - 1) * GAP_X
    for layer in sorted(rows):
        row = rows[layer]
        if layer:
            order = {n.name: i for i, n in enumerate(row)}
            row.sort(key=lambda n: (sum(nodes[p].x for p in parents[n.name]) / len(parents[n.name])
                                    if parents[n.name] else float("inf"), order[n.name]))
        span = len(row) * NODE_W + (len(row) - 1) * GAP_X
        left = (width - span) / 2
        for i, node in enumerate(row):
            node.x = left + i * (NODE_W + GAP_X)
            node.y = MARGIN + layer * (NODE_H + GAP_Y)
    height = 2 * MARGIN + (max(rows) + 1) * NODE_H + max(rows) * GAP_Y

    picture = Picture(width, height, nodes=[nodes[n] for n in names])
    worst = max(picture.nodes, key=lambda n: n.dropped, default=None)
    if worst is not None and worst.dropped > 0:
        worst.heaviest = True
        picture.heaviest = worst
    for source, target in pairs:
        count = counts.transitions.get((source, target), 0)
        entered = nodes[source].entered
        edge = Edge(source, target, count, count / entered if entered else 0.0, (source, target) in declared)
        _route(edge, nodes[source], nodes[target])
        picture.edges.append(edge)
    return picture


def _route(edge: Edge, source: Node, target: Node) -> None:
    """A cubic curve from the source's bottom to the target's top; an edge that goes up (back to
    an earlier layer) leaves and enters on the right side, bulging outwards."""
    edge.width = 1.2 + 7 * min(edge.share, 1.0)
    if target.layer > source.layer:
        x1, y1 = source.x + NODE_W / 2, source.y + NODE_H
        x2, y2 = target.x + NODE_W / 2, target.y
        bend = (y2 - y1) / 2
        edge.path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
        edge.label_x, edge.label_y = x1 + (x2 - x1) * 0.75, y1 + (y2 - y1) * 0.72
        return
    edge.backwards = True
    x1, y1 = source.x + NODE_W, source.y + NODE_H / 2 + 8
    x2, y2 = target.x + NODE_W, target.y + NODE_H / 2 - 8
    bulge = 40 + 18 * abs(source.layer - target.layer)
    edge.path = f"M{x1:.1f},{y1:.1f} C{x1 + bulge:.1f},{y1:.1f} {x2 + bulge:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    edge.label_x, edge.label_y = max(x1, x2) + bulge * 0.75, (y1 + y2) / 2
