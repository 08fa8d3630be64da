"""docs/grafana/alap.json and docs/prometheus/alerts.yml name only metrics that a real /metrics
answer contains (after traffic that makes every labelled series appear)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.conftest import APP_ID, Stack

DOCS = Path(__file__).resolve().parents[2] / "docs"
_METRIC = re.compile(r"\balap_[a-z_]+\b")


def _exprs(node) -> list[str]:
    if isinstance(node, dict):
        return [e for key, value in node.items() for e in
                ([value] if key in ("expr", "definition") and isinstance(value, str) else _exprs(value))]
    if isinstance(node, list):
        return [e for item in node for e in _exprs(item)]
    return []


def named_metrics() -> dict[str, set[str]]:
    dashboard = json.loads((DOCS / "grafana" / "alap.json").read_text())
    alerts = yaml.safe_load((DOCS / "prometheus" / "alerts.yml").read_text())
    assert alerts["groups"][0]["rules"], "no alerting rules"
    query = dashboard["templating"]["list"][1]["query"]["query"]
    return {"grafana": {m for e in _exprs(dashboard) + [query] for m in _METRIC.findall(e)},
            "alerts": {m for e in _exprs(alerts) for m in _METRIC.findall(e)}}


async def test_every_metric_the_dashboard_and_alerts_name_is_exposed(stack: Stack):
    # Traffic: a full journey (hops, funnel, completed session) and a refused send (an upstream error).
    screen = await stack.dial("*213#")
    screen = await stack.reply(screen, "2")
    screen = await stack.reply(screen, "1250")
    await stack.reply(screen, "4")
    stack.fail_sends(mode="body", json={"statusCode": "E1325", "statusDetail": "Format of the address is invalid"},
                     times=1)
    await stack.post_mo({"applicationId": APP_ID, "sessionId": "m-1",
                         "ussdOperation": "mo-init", "sourceAddress": "tel:8801812345670", "message": "*213#",
                         "requestId": "m-1-1", "encoding": "440", "version": "1.0"})
    await stack.settle()
    async with stack.http.get(f"{stack.app_url}/metrics") as resp:
        assert resp.status == 200
        exposed = {line.split("{")[0].split(" ")[0] for line in (await resp.text()).splitlines()
                   if line and not line.startswith("#")}
    named = named_metrics()
    assert {"alap_hop_seconds_bucket", "alap_ledger_records", "alap_store_up"} <= named["grafana"] | named["alerts"]
    for source, metrics in named.items():
        missing = sorted(metrics - exposed)
        assert not missing, f"{source} names metrics that /metrics does not expose: {missing}"
