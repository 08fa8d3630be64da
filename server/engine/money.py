"""Which session variables hold money, and reading them back as `Decimal`s.

An `amount` input stores a Decimal (server/engine/validators.py); the session's JSON keeps it as
a string (server/engine/session.py). Screens, conditions and action args read it back as a
Decimal, so `total / people` and the money filters (server/render/money_filters.py) stay exact.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from .model import Flow
from .validators import AmountValidator


def money_vars(flows: list[Flow]) -> frozenset[str]:
    """Variables set by `amount` inputs: screens and conditions see them as Decimals."""
    return frozenset(s.var for f in flows for s in f.states.values()
                     if s.var and isinstance(s.validator, AmountValidator))


def as_money(variables: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """The session's JSON keeps amounts as strings (server/engine/session.py): read them back
    as Decimals so `total / people` or `|percent(7)` stay exact."""
    for name in names & variables.keys():
        value = variables[name]
        if isinstance(value, str):
            try:
                variables[name] = Decimal(value)
            except InvalidOperation:
                pass
    return variables
