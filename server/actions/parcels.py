"""Parcel tracking actions (eCourier): track by ECR id or order id, pick one of several matches,
turn the pages of a parcel's history.

Session vars are plain JSON (str/int/bool/list/dict). Times are stored as neutral ASCII text
("20/01/2017 12:04") and localised by the flow's `digits` filter: a Bengali session whose screen
falls back to English on a GSM-7-only deployment then still shows a readable time.

    parcel          {id, product_id, status, time, date, delivered, history: [[{status, time}...]...], pages}
    history_page    index into parcel.history (a list of pages)
    parcel_matches  [parcel...] when an order id matched several parcels
    pick_error      true after a choice outside the list
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from typing import Any

import structlog

from ..engine.actions import ActionContext, ActionRegistry, ActionResult
from ..integrations.base import UpstreamError
from ..integrations.ecourier import (
    DHAKA, ECourierClient, ECourierInvalidRequest, ECourierNotFound, Parcel, StatusEvent,
)

log = structlog.get_logger("alap.actions")

TRACK_OUTCOMES = ("found", "several", "not_found", "invalid", "busy")
STATUS_TIME = "%d/%m/%Y %H:%M"
EVENT_TIME = "%d/%m %H:%M"  # history lines: the year is on the status screen already
MAX_MATCHES = 9  # one digit to pick with; more would not fit a USSD screen anyway
DEFAULT_PER_PAGE = 3

_ECR = re.compile(r"ECR\s*([0-9\s]*)", re.IGNORECASE)
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-/.#]{1,39}")


def reference_is_plausible(reference: str) -> bool:
    """An ECR id (ECR + 6-20 digits) or an order id of 2-40 plain characters. Checked here so a
    typo gets "not a valid ID" at once instead of a round trip that says "No Data Found"."""
    text = reference.strip()
    ecr = _ECR.fullmatch(text)
    if ecr:
        return 6 <= len(ecr.group(1).replace(" ", "")) <= 20
    return bool(_ORDER_ID.fullmatch(text))


def msgid_safe(text: str) -> str:
    """Flows show statuses through `_()`, whose new-style gettext %-formats its result: a bare
    "%" from upstream would break the screen."""
    return text.replace("%", "%%")


def _when(event: StatusEvent, fmt: str) -> str:
    return event.at.strftime(fmt) if event.at else event.time_text


def parcel_vars(parcel: Parcel, per_page: int) -> dict[str, Any]:
    """A parcel as session vars; the history (newest first) cut into pages of `per_page`."""
    events = [{"status": msgid_safe(e.status or "Unknown"), "time": _when(e, EVENT_TIME)}
              for e in parcel.history]
    pages = [events[i:i + per_page] for i in range(0, len(events), per_page)]
    status = parcel.status
    return {
        "id": parcel.tracking_id,
        "product_id": parcel.product_id,
        "status": msgid_safe(status.status or "Unknown") if status else "No updates yet",
        "time": _when(status, STATUS_TIME) if status else "",
        "date": _when(status, "%d/%m") if status else "",
        "delivered": parcel.delivered,
        "history": pages,
        "pages": len(pages),
    }


def _per_page(ctx: ActionContext) -> int:
    try:
        return min(max(int(str(ctx.args.get("per_page", DEFAULT_PER_PAGE))), 1), 10)
    except ValueError:
        return DEFAULT_PER_PAGE


def _index(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


async def track(ecourier: ECourierClient, ctx: ActionContext) -> ActionResult:
    """args: reference (what the subscriber typed), per_page (history events per screen)."""
    reference = str(ctx.args.get("reference", ""))
    if not reference_is_plausible(reference):
        return ActionResult(outcome="invalid")
    try:
        result = await ecourier.track(reference)
    except ECourierNotFound:
        return ActionResult(outcome="not_found")
    except ECourierInvalidRequest:
        return ActionResult(outcome="invalid")
    except UpstreamError as exc:
        log.warning("parcel_track_failed", upstream=exc.upstream, code=exc.code, retryable=exc.retryable)
        return ActionResult(outcome="busy")
    per_page = _per_page(ctx)
    if result.ambiguous:
        # Newest change first: the parcel the subscriber most likely asks about tops the list.
        floor = datetime.min.replace(tzinfo=DHAKA)
        newest = sorted(result.parcels, key=lambda p: (p.status.at or floor) if p.status else floor, reverse=True)
        matches = [parcel_vars(p, per_page) for p in newest[:MAX_MATCHES]]
        return ActionResult(outcome="several", vars={"parcel_matches": matches, "pick_error": False})
    return ActionResult(outcome="found", vars={"parcel": parcel_vars(result.parcels[0], per_page),
                                               "history_page": 0})


async def pick(ctx: ActionContext) -> ActionResult:
    """args: index, 1-based, into parcel_matches."""
    matches = ctx.vars.get("parcel_matches") or []
    index = _index(ctx.args.get("index"))
    if index is None or not 1 <= index <= len(matches):
        return ActionResult(outcome="invalid", vars={"pick_error": True})
    return ActionResult(vars={"parcel": matches[index - 1], "history_page": 0, "pick_error": False})


async def history_page(ctx: ActionContext) -> ActionResult:
    """args: page, 0-based; sets history_page, or outcome invalid past either end."""
    pages = int((ctx.vars.get("parcel") or {}).get("pages", 0))
    page = _index(ctx.args.get("page"))
    if page is None or not 0 <= page < pages:
        return ActionResult(outcome="invalid")
    return ActionResult(vars={"history_page": page})


def register_parcel_actions(registry: ActionRegistry, ecourier: ECourierClient) -> None:
    registry.register("parcel.track", partial(track, ecourier), outcomes=TRACK_OUTCOMES,
                      description="track an eCourier parcel by ECR id or order id",
                      params=("reference", "per_page"))
    registry.register("parcel.pick", pick, outcomes=("ok", "invalid"),
                      description="choose one of several parcels matching an order id",
                      params=("index",))
    registry.register("parcel.history_page", history_page, outcomes=("ok", "invalid"),
                      description="show another page of the parcel's history", params=("page",))
