"""`recharge.request`: the only thing the live USSD exchange does for a recharge.

It checks the amount against the configured limits, writes ONE ledger record (REQUESTED, with
its CAAS externalTrxId and eCare refid already drawn) and queues it for `alap worker`. No
money moves here (docs/recharge.md). The idempotency key is the session plus the request's details,
so a repeated confirmation of the same request finds the same record instead of a second one.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Callable

import structlog

from ..engine.actions import ActionContext, ActionRegistry, ActionResult
from ..store.ledger import Ledger, new_record

log = structlog.get_logger("alap.actions")

OUTCOMES = ("ok", "limits", "unavailable")


def register_recharge_actions(registry: ActionRegistry, ledger: Callable[[], Ledger | None],
                              limits: tuple[Decimal, Decimal]) -> None:
    low, high = limits

    async def request(ctx: ActionContext) -> ActionResult:
        """Queue a recharge: args recipient, operator, number_type, amount (whole taka)."""
        book = ledger()
        if book is None:  # a process without a ledger (check/test tooling): never pretend
            return ActionResult(outcome="unavailable")
        try:
            amount = Decimal(str(ctx.args.get("amount", "")))
        except InvalidOperation:
            amount = Decimal(0)
        if not (low <= amount <= high) or amount != amount.to_integral_value():
            return ActionResult(outcome="limits", vars={"min": str(low), "max": str(high)})
        recipient = str(ctx.args.get("recipient", ""))
        operator = str(ctx.args.get("operator", ""))
        number_type = str(ctx.args.get("number_type", ""))
        key = f"{ctx.session_id}:{recipient}:{operator}:{number_type}:{amount}"
        try:
            record = new_record(idempotency_key=key, payer=ctx.address, payer_msisdn=ctx.msisdn,
                                recipient=recipient, operator=operator, number_type=number_type,
                                amount=amount, language=ctx.language)
        except ValueError as exc:
            log.warning("recharge_request_invalid", error=str(exc))
            return ActionResult(outcome="unavailable")
        record, created = await book.create(record, enqueue=True)
        log.info("recharge_requested", record=record.id, created=created, amount=record.amount)
        return ActionResult(vars={"recharge_id": record.id})

    registry.register("recharge.request", request, outcomes=OUTCOMES,
                      description="write a recharge to the ledger and queue it for the worker",
                      params=("amount", "recipient", "operator", "number_type"))
