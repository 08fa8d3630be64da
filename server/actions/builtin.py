"""Actions every flow can use without an upstream."""
from __future__ import annotations

from ..engine.actions import ActionContext, ActionRegistry, ActionResult
from ..msisdn import operator_of

LANGUAGES = ("bn", "en")

async def set_language(ctx: ActionContext) -> ActionResult:
    """Save the subscriber's language (args.language: bn or en); shared by USSD and SMS."""
    language = str(ctx.args.get("language", ""))
    if language not in LANGUAGES:
        return ActionResult(outcome="invalid")
    return ActionResult(language=language)


async def detect_operator(ctx: ActionContext) -> ActionResult:
    """Operator of args.number by its prefix: outcome ok with var `operator`, or unknown."""
    operator = operator_of(str(ctx.args.get("number", "")))
    if operator is None:
        return ActionResult(outcome="unknown")
    return ActionResult(vars={"operator": operator})


async def set_vars(ctx: ActionContext) -> ActionResult:
    """Copy the (rendered) args into session variables: `args: {ref: "{{ args }}"}`."""
    return ActionResult(vars=dict(ctx.args))


async def opt_out(ctx: ActionContext) -> ActionResult:
    """STOP: no more messages to this subscriber except replies to their own requests."""
    return ActionResult(opted_out=True)


async def opt_in(ctx: ActionContext) -> ActionResult:
    """START: messages resume."""
    return ActionResult(opted_out=False)


def register_builtin(registry: ActionRegistry) -> None:
    registry.register("set_language", set_language, outcomes=("ok", "invalid"),
                      description="save the subscriber's language", params=("language",))
    registry.register("operator.detect", detect_operator, outcomes=("ok", "unknown"),
                      description="operator of a Bangladeshi mobile number by its prefix",
                      params=("number",))
    registry.register("vars.set", set_vars, description="set session variables from args")
    registry.register("subscriber.opt_out", opt_out, description="SMS STOP: opt out of messages", params=())
    registry.register("subscriber.opt_in", opt_in, description="SMS START: opt back in", params=())
