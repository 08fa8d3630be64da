"""Funnel counters: per flow and per day, how many sessions entered each state, moved along each
transition, completed, failed, or were abandoned where they stood.

One hash per flow and day (Redis `<prefix>funnel:<flow>:<YYYYMMDD>`, the memory store a dict),
incremented by the hop's own commit (server/store/redis_hop_scripts.py: no extra round trip) and
kept `RETENTION_DAYS`. Fields:

    started        sessions that entered the flow (dialled, pushed, or jumped in from another)
    completed      final screens of the flow
    failed         sessions ended by a system screen (too many wrong inputs, an error)
    abandoned      sessions that expired waiting on one of the flow's screens
    e:<state>      entries into a state            t:<from>><to>   transitions (<to> may be @flow)
    a:<state>      abandoned at a state            f:<state>       failed at a state

Abandonment is counted when the open-sessions index is swept (Store.sweep_expired): the commit
also records, next to the index, which flow/day/state each open session waits in.

Days are Bangladesh days (UTC+6, no daylight saving): an operator's "today".
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Iterable

RETENTION_DAYS = 90
RETENTION_SECONDS = (RETENTION_DAYS + 1) * 86400
DHAKA = timezone(timedelta(hours=6))


_today: tuple[float, float, str] = (0.0, 0.0, "")  # (day starts, day ends, YYYYMMDD): every hop asks


def day_of(at: float | None = None) -> str:
    """YYYYMMDD of the Bangladesh day containing epoch `at` (default now)."""
    global _today
    now = time.time() if at is None else at
    starts, ends, day = _today
    if starts <= now < ends:
        return day
    moment = datetime.fromtimestamp(now, DHAKA)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    _today = (midnight, midnight + 86400, moment.strftime("%Y%m%d"))  # Dhaka has no daylight saving
    return _today[2]


def today() -> date:
    return datetime.now(DHAKA).date()


@dataclass
class FunnelHop:
    """What one hop adds to the funnel: (flow, field) increments for `day`, and where the session
    now waits (flow, state), or None when it ended. `subscriber` (the profile key) also points
    at the session while it is open, for the console's subscriber page."""

    day: str
    subscriber: str = ""
    increments: list[tuple[str, str]] = field(default_factory=list)
    waiting_in: tuple[str, str] | None = None


def hop_counts(before: tuple[str, str] | None, entered: Iterable[tuple[str, str]], after: tuple[str, str] | None,
               ended: str | None, *, subscriber: str = "", day: str | None = None) -> FunnelHop:
    """The increments of one hop. `before`: the (flow, state) the session was in (None for a new
    session); `entered`: the states entered this turn, in order; `after`: where the session
    waits now (None: it ended); `ended`: why it ended (completed, input_failed, error)."""
    hop = FunnelHop(day or day_of(), subscriber, waiting_in=after)
    previous = before
    for flow, state in entered:
        if previous is None or previous[0] != flow:
            hop.increments.append((flow, "started"))
        if previous is not None and previous != (flow, state):
            source_flow, source_state = previous
            target = state if source_flow == flow else f"@{flow}"
            hop.increments.append((source_flow, f"t:{source_state}>{target}"))
        hop.increments.append((flow, f"e:{state}"))
        previous = (flow, state)
    if ended and previous is not None:
        flow, state = previous
        if ended == "completed":
            hop.increments.append((flow, "completed"))
        else:
            hop.increments += [(flow, "failed"), (flow, f"f:{state}")]
    return hop


@dataclass
class FunnelCounts:
    """A flow's counters summed over some days."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    abandoned: int = 0
    resumed: int = 0  # re-dials that continued a dropped session (server/bdapps/ussd.py)
    entered: Counter = field(default_factory=Counter)  # state -> n
    abandoned_at: Counter = field(default_factory=Counter)  # state -> n
    failed_at: Counter = field(default_factory=Counter)  # state -> n
    transitions: Counter = field(default_factory=Counter)  # (from, to) -> n

    @classmethod
    def from_fields(cls, hashes: Iterable[dict]) -> "FunnelCounts":
        counts = cls()
        for fields in hashes:
            for raw_name, raw_value in fields.items():
                name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
                value = int(raw_value)
                kind, _, rest = name.partition(":")
                if kind in ("started", "completed", "failed", "abandoned", "resumed") and not rest:
                    setattr(counts, kind, getattr(counts, kind) + value)
                elif kind == "e":
                    counts.entered[rest] += value
                elif kind == "a":
                    counts.abandoned_at[rest] += value
                elif kind == "f":
                    counts.failed_at[rest] += value
                elif kind == "t":
                    source, _, target = rest.partition(">")
                    counts.transitions[(source, target)] += value
        return counts


def days_back(first: date, count: int) -> list[str]:
    """`count` days ending with `first`, as YYYYMMDD."""
    return [(first - timedelta(days=i)).strftime("%Y%m%d") for i in range(count)]
