"""What each console page shows, read from the store, the ledger and the loaded flows (no HTTP
here: server/admin/routes.py turns these into pages)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from babel.dates import format_datetime

from ..engine.engine import Engine
from ..engine.session import Session, decode_session
from ..msisdn import bengali_digits, local
from ..store import Profile, Store
from ..store.funnel import DHAKA, FunnelCounts, days_back, today
from ..store.ledger import Ledger, RechargeRecord, RechargeState
from ..store.ledger.records import ATTENTION_STATES
from .flow_picture import Picture, lay_out

RANGES = {"today": (0, 1), "yesterday": (1, 1), "7d": (0, 7)}  # name -> (days back of the last day, days)

# Re-dials that continued a dropped session: the USSD hop counts them in the day hash's
# `resumed` field (server/bdapps/ussd.py), shown as a column of the index.
RESUME_COUNTED = True

_LONG_DIGITS = re.compile(r"[0-9০-৯]{6,}")


def range_days(name: str) -> list[str]:
    back, count = RANGES[name]
    return days_back(today() - timedelta(days=back), count)


def parse_number(text: str) -> tuple[str, str] | None:
    """(01XXXXXXXXX, BDApps address tel:8801XXXXXXXXX) for a Bangladeshi mobile number in any
    common spelling (server/msisdn.py), None otherwise."""
    found = local(text)
    return (found, "tel:88" + found) if found else None


def mask(value: Any) -> str:
    """Long digit runs (phone numbers, account ids) shown as 018•••••78."""
    return _LONG_DIGITS.sub(lambda m: m[0][:3] + "•" * (len(m[0]) - 5) + m[0][-2:], str(value))


def when(at: float | None, language: str) -> str:
    if at is None:
        return "—"
    text = format_datetime(datetime.fromtimestamp(at, DHAKA), "medium", locale="bn_BD" if language == "bn" else "en_GB")
    return bengali_digits(text) if language == "bn" else text


# -- index ----------------------------------------------------------------------------------------

@dataclass
class FlowRow:
    name: str
    description: str
    channels: str
    today: FunnelCounts
    yesterday: FunnelCounts


async def flow_rows(engine: Engine, store: Store) -> list[FlowRow]:
    days = range_days("today") + range_days("yesterday")
    rows = []
    for flow in sorted(engine.flows.values(), key=lambda f: ("ussd" not in f.channels, f.name)):
        counts = [await store.funnel(flow.name, [day]) for day in days]
        rows.append(FlowRow(flow.name, getattr(flow, "description", "") or "", ", ".join(flow.channels), *counts))
    return rows


async def ledger_counts(ledger: Ledger) -> list[tuple[RechargeState, int]]:
    """Every state's count, the ones that need an operator first."""
    counts = await ledger.counts()
    order = [RechargeState.NEEDS_REVIEW, RechargeState.REFUND_REQUIRED]
    order += [s for s in RechargeState if s not in ATTENTION_STATES]
    return [(s, counts.get(s, 0)) for s in order]


# -- flow picture --------------------------------------------------------------------------------

async def flow_picture(engine: Engine, store: Store, name: str, period: str) -> tuple[Picture, FunnelCounts]:
    counts = await store.funnel(name, range_days(period))
    return lay_out(engine.flows[name], counts), counts


# -- subscriber ----------------------------------------------------------------------------------

@dataclass
class SubscriberView:
    msisdn: str
    address: str
    profile: Profile
    session: Session | None
    session_id: str | None
    variables: list[tuple[str, str]]
    recharges: list[RechargeRecord]


RECENT_RECHARGES = 20
LEDGER_SCAN = 1000  # the ledger is indexed by state and time, not by subscriber: newest records scanned


async def subscriber_view(store: Store, ledger: Ledger, msisdn: str, address: str) -> SubscriberView:
    profile = await store.get_profile(address)
    session_id = await store.live_session(address)
    session = decode_session(await store.get_session(session_id)) if session_id else None
    variables = sorted((str(k), mask(v)) for k, v in (session.vars.items() if session else []))
    records = [r for r in await ledger.list(limit=LEDGER_SCAN)
               if msisdn in (r.payer_msisdn, r.recipient) or "".join(r.payer.split()) == address]
    return SubscriberView(msisdn, address, profile, session, session_id if session else None, variables,
                          records[:RECENT_RECHARGES])
