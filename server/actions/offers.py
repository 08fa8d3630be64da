"""eCare offer packs: the list in pages of N, and one pack's details.

Session vars (plain JSON):

    offer_pages   [[{id, op, operator, number_type, title, price, validity, days, details}...]...]
    offers_page   index into offer_pages
    offer         the chosen pack
    offer_error   true after a choice outside the page (the list screen says so)
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any

import structlog

from ..engine.actions import ActionContext, ActionRegistry, ActionResult
from ..integrations.base import UpstreamError
from ..integrations.ecare import ECareClient, NumberType, OfferPack, Operator

log = structlog.get_logger("alap.actions")

LIST_OUTCOMES = ("ok", "empty", "busy")
DEFAULT_PER_PAGE = 4
MAX_PER_PAGE = 7  # 8 and 9 are the list screen's Previous/Next keys
MAX_OFFERS = 40  # bounds the session size; nobody pages past ten screens on a phone

# Names are catalog msgids (the flow shows them through `_()`); short tags fit list lines.
OPERATOR_NAMES = {
    Operator.GRAMEENPHONE: ("Grameenphone", "GP"), Operator.GRAMEENPHONE_013: ("Grameenphone", "GP"),
    Operator.BANGLALINK: ("Banglalink", "BL"), Operator.BANGLALINK_014: ("Banglalink", "BL"),
    Operator.ROBI: ("Robi", "Robi"), Operator.AIRTEL: ("Airtel", "Airtel"),
    Operator.TELETALK: ("Teletalk", "Teletalk"),
}
NUMBER_TYPE_NAMES = {NumberType.PREPAID: "Prepaid", NumberType.POSTPAID: "Postpaid",
                     NumberType.SKITTO: "Skitto", NumberType.POWERLOAD: "Power Load"}
_DAYS = re.compile(r"(\d{1,3})\s*days?", re.IGNORECASE)


def offer_vars(pack: OfferPack) -> dict[str, Any]:
    # Never empty: the flow passes these to `_()`, and gettext("") is the catalog header.
    name, tag = OPERATOR_NAMES.get(pack.operator, ("All operators", "")) if pack.operator \
        else ("All operators", "")
    days = _DAYS.fullmatch(pack.validity.strip())
    return {
        "id": pack.offer_id, "op": tag, "operator": name,
        "number_type": NUMBER_TYPE_NAMES.get(pack.number_type, "All numbers") if pack.number_type
        else "All numbers",
        "title": pack.title or pack.offer_id, "price": str(pack.price),
        # Days as a number so Bengali screens can say "৭ দিন"; other validities shown as given.
        "validity": pack.validity or "-", "days": int(days.group(1)) if days else 0,
        "details": pack.details,
    }


def _int_arg(ctx: ActionContext, name: str) -> int | None:
    try:
        return int(str(ctx.args.get(name, "")).strip())
    except ValueError:
        return None


async def list_offers(ecare: ECareClient, ctx: ActionContext) -> ActionResult:
    """args: per_page. Outcome ok with the first page showing, empty, or busy."""
    try:
        packs = await ecare.offer_packs()
    except UpstreamError as exc:
        log.warning("offers_failed", upstream=exc.upstream, code=exc.code, retryable=exc.retryable)
        return ActionResult(outcome="busy")
    if not packs:
        return ActionResult(outcome="empty")
    per_page = min(max(_int_arg(ctx, "per_page") or DEFAULT_PER_PAGE, 1), MAX_PER_PAGE)
    offers = [offer_vars(p) for p in packs[:MAX_OFFERS]]
    pages = [offers[i:i + per_page] for i in range(0, len(offers), per_page)]
    return ActionResult(vars={"offer_pages": pages, "offers_page": 0, "offer_error": False})


async def turn_page(ctx: ActionContext) -> ActionResult:
    """args: page, 0-based. Outcome invalid (with offer_error) past either end."""
    page = _int_arg(ctx, "page")
    if page is None or not 0 <= page < len(ctx.vars.get("offer_pages") or []):
        return ActionResult(outcome="invalid", vars={"offer_error": True})
    return ActionResult(vars={"offers_page": page, "offer_error": False})


async def pick_offer(ctx: ActionContext) -> ActionResult:
    """args: index, 1-based, on the page showing."""
    pages = ctx.vars.get("offer_pages") or []
    page = ctx.vars.get("offers_page", 0)
    shown = pages[page] if isinstance(page, int) and 0 <= page < len(pages) else []
    index = _int_arg(ctx, "index")
    if index is None or not 1 <= index <= len(shown):
        return ActionResult(outcome="invalid", vars={"offer_error": True})
    return ActionResult(vars={"offer": shown[index - 1], "offer_error": False})


def register_offer_actions(registry: ActionRegistry, ecare: ECareClient) -> None:
    registry.register("offers.list", partial(list_offers, ecare), outcomes=LIST_OUTCOMES,
                      description="eCare offer packs on sale, in pages", params=("per_page",))
    registry.register("offers.page", turn_page, outcomes=("ok", "invalid"),
                      description="show another page of offer packs", params=("page",))
    registry.register("offers.pick", pick_offer, outcomes=("ok", "invalid"),
                      description="choose a pack on the page showing", params=("index",))
