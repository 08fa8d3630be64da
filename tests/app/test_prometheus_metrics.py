"""GET /metrics: callbacks by route and status, hop latency, the flow funnel, sessions."""
from __future__ import annotations

import re

from tests.conftest import Stack


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf'^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$' if labels else rf"^{re.escape(name)} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def scrape(stack: Stack) -> str:
    async with stack.http.get(f"{stack.app_url}/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        return await resp.text()


async def test_metrics_count_callbacks_funnel_and_sessions(stack: Stack):
    before = await scrape(stack)
    screen = await stack.dial("*213#")
    screen = await stack.reply(screen, "2")
    screen = await stack.reply(screen, "1250")
    open_now = await scrape(stack)
    assert sample(open_now, "alap_sessions_active") == 1
    screen = await stack.reply(screen, "4")
    assert screen["ussdOperation"] == "mt-fin"
    await stack.settle()
    async with stack.http.post(f"{stack.app_url}/bdapps/ussd", data=b"nope") as resp:
        assert resp.status == 400
    after = await scrape(stack)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("alap_callbacks_total", route="/bdapps/ussd", status="200") == 4
    assert delta("alap_callbacks_total", route="/bdapps/ussd", status="400") == 1
    assert delta("alap_hop_seconds_count", operation="mo-init") == 1
    assert delta("alap_hop_seconds_count", operation="mo-cont") == 3
    assert delta("alap_flow_state_entries_total", flow="demo", state="main") == 1
    assert delta("alap_flow_state_entries_total", flow="demo", state="split_route") == 1
    assert delta("alap_flow_state_entries_total", flow="demo", state="split_result") == 1
    assert delta("alap_sessions_ended_total", reason="completed") == 1
    assert sample(after, "alap_sessions_active") == 0
    assert delta("alap_upstream_seconds_count", upstream="bdapps") == 4
