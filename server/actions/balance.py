""""My balance": the dialling subscriber's chargeable balance through BDApps CAAS.

The subscriber id is the gateway's address byte for byte (it may be a masked `tel:B%3C...`
id; CAAS knows the subscriber by exactly that). The balance goes into the session as a string
("100.00"): exact, JSON-safe, and the flow's `taka` filter formats it per language.
"""
from __future__ import annotations

from functools import partial

import structlog

from ..engine.actions import ActionContext, ActionRegistry, ActionResult
from ..integrations.base import UpstreamAuthError, UpstreamError, UpstreamRejected
from ..integrations.caas import CaasClient

log = structlog.get_logger("alap.actions")

BALANCE_OUTCOMES = ("ok", "unavailable", "busy")


async def query_balance(caas: CaasClient, ctx: ActionContext) -> ActionResult:
    """Outcome ok with var `balance`; unavailable when CAAS refuses this subscriber for good
    (e.g. an address it does not serve); busy for anything that may pass (or is ours to fix)."""
    try:
        balance = await caas.query_balance(ctx.address)
    except UpstreamAuthError as exc:
        # Our credentials, not the subscriber's problem: "try again later" is the honest screen.
        log.error("balance_auth_failed", upstream=exc.upstream, code=exc.code)
        return ActionResult(outcome="busy")
    except UpstreamRejected as exc:
        if exc.retryable:
            return ActionResult(outcome="busy")
        log.info("balance_refused", code=exc.code)
        return ActionResult(outcome="unavailable")
    except UpstreamError as exc:
        log.warning("balance_failed", upstream=exc.upstream, code=exc.code)
        return ActionResult(outcome="busy")
    return ActionResult(vars={"balance": str(balance.chargeable_balance),
                              "balance_account": balance.account_type.lower()})


def register_balance_actions(registry: ActionRegistry, caas: CaasClient) -> None:
    registry.register("balance.query", partial(query_balance, caas), outcomes=BALANCE_OUTCOMES,
                      description="the subscriber's chargeable balance (CAAS)", params=())
