"""The named operations flows may call. `build_registry` is the one place they are listed."""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ..engine.actions import ActionRegistry
from .balance import register_balance_actions
from .builtin import register_builtin
from .offers import register_offer_actions
from .parcels import register_parcel_actions
from .recharge import register_recharge_actions

if TYPE_CHECKING:
    from ..store.ledger import Ledger
    from ..upstreams import Upstreams

DEFAULT_RECHARGE_LIMITS = (Decimal(10), Decimal(1000))


def build_registry(upstreams: "Upstreams | None" = None, *, ledger: "Ledger | None" = None,
                   recharge_limits: tuple[Decimal, Decimal] = DEFAULT_RECHARGE_LIMITS) -> ActionRegistry:
    """Every action flows may call. Without `upstreams` (unit tests of the engine) only the
    built-in actions are registered; without a `ledger`, `recharge.request` answers
    `unavailable` (tooling processes that must never queue money)."""
    registry = ActionRegistry()
    register_builtin(registry)
    register_recharge_actions(registry, lambda: ledger, recharge_limits)
    if upstreams is not None:
        register_upstream_actions(registry, upstreams)
    return registry


def register_upstream_actions(registry: ActionRegistry, upstreams: "Upstreams") -> None:
    """Actions that call eCourier, eCare and CAAS (parcel tracking, balance, offer packs)."""
    register_parcel_actions(registry, upstreams.ecourier)
    register_balance_actions(registry, upstreams.caas)
    register_offer_actions(registry, upstreams.ecare)
