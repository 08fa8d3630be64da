"""Metric labels are bounded (server/metrics.py, server/app.py): a scan of made-up paths and an
upstream answering made-up codes add no series to a real /metrics."""
from __future__ import annotations

import re
import uuid

from server.integrations.base import UpstreamRejected
from server.metrics import UNMATCHED_ROUTE, known_error_codes
from server.sandbox.faults import Fault

from ..conftest import APP_ID, redis_test_store, start_stack


def label_values(text: str, metric: str, label: str) -> set[str]:
    return set(re.findall(rf'^{metric}{{[^}}]*{label}="([^"]*)"', text, re.MULTILINE))


def sample(text: str, metric: str, labels: str) -> float:
    match = re.search(rf"^{metric}{{{re.escape(labels)}}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_a_path_scan_and_made_up_upstream_codes_add_no_series(aiohttp_server, redis_url):
    token = uuid.uuid4().hex[:10]
    async with redis_test_store(redis_url) as store:
        stack = await start_stack(aiohttp_server, store=store)
        try:
            async with stack.http.get(f"{stack.app_url}/metrics") as resp:
                before = await resp.text()
            for i in range(25):  # a scanner walking made-up paths, under /bdapps/ and elsewhere
                async with stack.http.post(f"{stack.app_url}/bdapps/{token}-{i}", json={}) as resp:
                    assert resp.status == 404
                async with stack.http.get(f"{stack.app_url}/{token}/{i}") as resp:
                    assert resp.status == 404
            async with stack.http.get(f"{stack.app_url}/bdapps/ussd") as resp:  # a route, the wrong method
                assert resp.status == 405
            # The gateway answers codes nobody knows, then an HTTP error, for the screens.
            stack.faults.add(Fault(endpoint="/ussd/send", mode="body", times=1,
                                   json={"statusCode": f"E9{token}", "statusDetail": "made up"}))
            stack.faults.add(Fault(endpoint="/ussd/send", mode="status", status=418, times=1))
            for i in range(2):
                body = {"applicationId": APP_ID, "sessionId": f"{token}-s{i}", "requestId": f"{token}-r{i}",
                        "ussdOperation": "mo-init", "message": "*213#", "sourceAddress": "tel:8801812345678"}
                async with stack.http.post(f"{stack.app_url}/bdapps/ussd", json=body) as resp:
                    assert resp.status == 200
            await stack.settle()
            assert len(stack.faults.calls_to("/ussd/send")) == 2
            # An integration's client met a code its table does not know (e.g. eCare's STATUS).
            UpstreamRejected("ecare", f"WEIRD{token}", "made up")
            async with stack.http.get(f"{stack.app_url}/metrics") as resp:
                after = await resp.text()
        finally:
            await stack.http.close()
    assert token not in after
    assert label_values(after, "alap_callbacks_total", "route") <= {"/bdapps/ussd", "/bdapps/sms",
                                                                     "/bdapps/sms/report", UNMATCHED_ROUTE}
    unmatched = f'route="{UNMATCHED_ROUTE}",status="404"'
    assert sample(after, "alap_callbacks_total", unmatched) - sample(before, "alap_callbacks_total", unmatched) == 25
    wrong_method = f'route="{UNMATCHED_ROUTE}",status="405"'
    assert sample(after, "alap_callbacks_total", wrong_method) - sample(before, "alap_callbacks_total", wrong_method) == 1
    codes = label_values(after, "alap_upstream_errors_total", "code")
    assert codes <= known_error_codes() | {"other", "http_1xx", "http_2xx", "http_3xx", "http_4xx", "http_5xx"}
    for upstream, code in (("bdapps", "other"), ("bdapps", "http_4xx"), ("ecare", "other")):
        labels = f'code="{code}",upstream="{upstream}"'
        assert sample(after, "alap_upstream_errors_total", labels) - sample(before, "alap_upstream_errors_total",
                                                                             labels) == 1
