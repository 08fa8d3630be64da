"""Prometheus metrics (prometheus-client), safe under gunicorn's several processes.

When `PROMETHEUS_MULTIPROC_DIR` is set (`alap serve` sets it for gunicorn workers), every
process writes its samples there and `/metrics` aggregates them with MultiProcessCollector.
Label values are bounded, so that no caller can make a series per request: routes are route
templates (`/bdapps/ussd`, or `unmatched` for a path no route serves), upstream error codes
are one of `UPSTREAM_ERROR_CODES` or `other`, and flow/state names come from the loaded flows.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest,
                               multiprocess, values)
from prometheus_client.core import GaugeMetricFamily


class _Pid:
    """This process's id, read again only after a fork. prometheus-client's multiprocess values
    ask for it on every increment to notice a fork (`os.getpid()`, a system call each time:
    about 25 per hop); a fork is exactly when this one changes."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()

    @classmethod
    def current(cls) -> int:
        return cls.value


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # before the first metric below is made
    os.register_at_fork(after_in_child=_Pid.refresh)
    values.ValueClass = values.MultiProcessValue(process_identifier=_Pid.current)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

CALLBACKS = Counter("alap_callbacks_total", "Inbound BDApps callbacks by route and HTTP status",
                    ["route", "status"])
HOP_SECONDS = Histogram("alap_hop_seconds", "USSD hop latency: callback received -> screen sent",
                        ["operation"], buckets=_LATENCY_BUCKETS)
UPSTREAM_SECONDS = Histogram("alap_upstream_seconds", "Upstream call latency", ["upstream"],
                             buckets=_LATENCY_BUCKETS)
UPSTREAM_ERRORS = Counter("alap_upstream_errors_total", "Upstream call failures by upstream and code",
                          ["upstream", "code"])
SESSIONS_ENDED = Counter("alap_sessions_ended_total",
                         "USSD sessions ended, by reason (completed, timed_out, abandoned, error)", ["reason"])
STATE_ENTRIES = Counter("alap_flow_state_entries_total", "Entries into each state of each flow (the funnel)",
                        ["flow", "state"])
RESUMES = Counter("alap_resumes_total",
                  "Dropped USSD calls offered to continue on re-dial, by the flow and state they dropped on "
                  "and outcome (offered, accepted, declined)", ["flow", "state", "outcome"])


UNMATCHED_ROUTE = "unmatched"


class Children:
    """`metric.labels(*values)`, made once per label values and kept: the hop path counts
    several series per hop, and prometheus-client checks and locks on every labels() call.
    Safe because every label value here is bounded (see above)."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self.metric.labels(*values)
        return child


callbacks = Children(CALLBACKS)
hop_seconds = Children(HOP_SECONDS)
state_entries = Children(STATE_ENTRIES)
sessions_ended = Children(SESSIONS_ENDED)
upstream_seconds = Children(UPSTREAM_SECONDS)
upstream_errors = Children(UPSTREAM_ERRORS)

# The codes an upstream error may be counted under: BDApps' documented status codes, the
# transport words of every client (server/bdapps/client.py, server/integrations/base.py), and
# what each integration declares next to its own table of codes (`register_error_codes`).
# Anything else an upstream answers, a code it made up or a garbled status, is `other` (the
# code itself is in the log line); numbers that look like HTTP statuses count by class.
_ERROR_CODES: set[str] = {
    "E1303", "E1308", "E1309", "E1311", "E1312", "E1313", "E1315", "E1317", "E1318", "E1319", "E1325",
    "E1326", "E1328", "E1331", "E1334", "E1335", "E1337", "E1341", "E1342", "E1343", "E1601", "E1602",
    "E1603", "connect", "connect_timeout", "timeout", "disconnected", "transport", "malformed", "unsent",
    "rejected",
}


def register_error_codes(codes: Iterable[str]) -> None:
    """Called once per integration module, at import, with the codes its client documents."""
    _ERROR_CODES.update(codes)


def known_error_codes() -> frozenset[str]:
    return frozenset(_ERROR_CODES)


def error_label(code: str) -> str:
    """A bounded label for an upstream error code."""
    if code in _ERROR_CODES:
        return code
    number = code[5:] if code.startswith("http_") else code
    if len(number) == 3 and number.isdigit() and number[0] in "12345":
        return f"http_{number[0]}xx"
    return "other"


def observe_upstream(upstream: str, seconds: float, error_code: str | None) -> None:
    upstream_seconds(upstream).observe(seconds)
    if error_code is not None:
        upstream_errors(upstream, error_label(error_code)).inc()


class _ActiveSessions:
    """Scrape-time gauges: the values are read from the store just before exposition."""

    def __init__(self, value: float | None, store_up: bool | None = None,
                 ledger: dict[str, int] | None = None) -> None:
        self.value = value
        self.store_up = store_up
        self.ledger = ledger

    def collect(self):
        if self.value is not None:
            gauge = GaugeMetricFamily("alap_sessions_active", "USSD sessions currently open (all processes)")
            gauge.add_metric([], self.value)
            yield gauge
        if self.store_up is not None:
            up = GaugeMetricFamily("alap_store_up", "1 when the session store (Redis) answers, else 0")
            up.add_metric([], 1.0 if self.store_up else 0.0)
            yield up
        if self.ledger is not None:
            records = GaugeMetricFamily("alap_ledger_records", "Recharge ledger records by state", labels=["state"])
            for state, count in sorted(self.ledger.items()):
                records.add_metric([state], count)
            yield records


def exposition(active_sessions: float | None, *, store_up: bool | None = None,
               ledger: dict[str, int] | None = None) -> tuple[bytes, str]:
    """The /metrics body: this process's (or every worker's) samples plus the scrape-time
    gauges (open sessions, store reachability, ledger records by state)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    if active_sessions is not None or store_up is not None or ledger is not None:
        extra = CollectorRegistry()
        extra.register(_ActiveSessions(active_sessions, store_up, ledger))  # type: ignore[arg-type]
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST

