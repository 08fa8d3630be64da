"""The named operations flows may call. `build_registry` is the one place they are listed."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.actions import ActionRegistry
from .balance import register_balance_actions
from .builtin import register_builtin
from .offers import register_offer_actions
from .parcels import register_parcel_actions

if TYPE_CHECKING:
    from ..upstreams import Upstreams


def build_registry(upstreams: "Upstreams | None" = None) -> ActionRegistry:
    """Every action flows may call. Without `upstreams` (unit tests of the engine) only the
    built-in actions are registered."""
    registry = ActionRegistry()
    register_builtin(registry)
    if upstreams is not None:
        register_upstream_actions(registry, upstreams)
    return registry


def register_upstream_actions(registry: ActionRegistry, upstreams: "Upstreams") -> None:
    """Actions that call eCourier, eCare and CAAS (parcel tracking, balance, offer packs)."""
    register_parcel_actions(registry, upstreams.ecourier)
    register_balance_actions(registry, upstreams.caas)
    register_offer_actions(registry, upstreams.ecare)
