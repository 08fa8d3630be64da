"""The flow picture's layout (server/admin/flow_picture.py) on every shipped flow: states never
overlap, every state is inside the picture, forward transitions point down, and the shares and
the heaviest drop-off follow the counters."""
from __future__ import annotations

from collections import Counter

import pytest

from server.admin.flow_picture import NODE_H, NODE_W, lay_out
from server.app import build_engine
from server.store.funnel import FunnelCounts
from tests.conftest import fixture_registry
from tests.conftest import test_settings as settings

ENGINE = build_engine(settings(), fixture_registry())


@pytest.mark.parametrize("name", sorted(ENGINE.flows))
def test_states_do_not_overlap_and_fit_the_picture(name):
    picture = lay_out(ENGINE.flows[name], FunnelCounts())
    assert {n.name for n in picture.nodes} >= set(ENGINE.flows[name].states)
    for node in picture.nodes:
        assert 0 <= node.x and node.x + NODE_W <= picture.width and 0 <= node.y and node.y + NODE_H <= picture.height
    for a in picture.nodes:
        for b in picture.nodes:
            if a is not b:
                apart = a.x + NODE_W <= b.x or b.x + NODE_W <= a.x or a.y + NODE_H <= b.y or b.y + NODE_H <= a.y
                assert apart, (a.name, b.name)
    start = next(n for n in picture.nodes if n.name == ENGINE.flows[name].start)
    assert start.layer == 0
    drawn_down = [e for e in picture.edges if not e.backwards]
    assert len(drawn_down) >= len(picture.edges) / 2, "a flow's transitions mostly point down"
    nodes = {n.name: n for n in picture.nodes}
    assert all(nodes[e.target].layer > nodes[e.source].layer for e in drawn_down)


def test_shares_widths_and_the_heaviest_drop_off():
    counts = FunnelCounts(entered=Counter(main=10, ask_total=6, ask_people=2),
                          abandoned_at=Counter(main=1, ask_total=4),
                          transitions=Counter({("main", "ask_total"): 6, ("ask_total", "ask_people"): 2,
                                               ("ask_total", "main"): 1}))  # `0`: back, not in the YAML
    picture = lay_out(ENGINE.flows["demo"], counts)
    edges = {(e.source, e.target): e for e in picture.edges}
    assert edges[("main", "ask_total")].share == pytest.approx(0.6)
    assert edges[("main", "ask_number")].count == 0
    assert edges[("main", "ask_total")].width > edges[("ask_total", "ask_people")].width > edges[("main", "about")].width
    back = edges[("ask_total", "main")]
    assert not back.declared and back.backwards and back.count == 1
    assert picture.heaviest is not None and picture.heaviest.name == "ask_total"
    assert [n.name for n in picture.nodes if n.heaviest] == ["ask_total"]
    assert lay_out(ENGINE.flows["demo"], FunnelCounts()).heaviest is None
