"""Exact money arithmetic for flows: Jinja filters that compute in `Decimal`, never in float.

    {{ rent|percent(7)|round_taka|taka }}      7% of the rent, to the paisa, rounded half-up
    {{ total|divided(people)|round_taka|taka }}
    {{ price|times(3)|taka }}

Values from `amount` inputs are already Decimals (server/engine/validators.py); these filters
also take integers and numeric strings (session variables, action results) and read them
through `str`, so 0.1 never becomes 0.1000000000000000055511151231257827.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

PAISA = Decimal("0.01")


def to_decimal(value: Any) -> Decimal:
    """A Decimal from a Decimal, int or numeric string; a float goes through its shortest
    repr. Raises ValueError for anything else (the screen fails loudly in `alap check`)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    try:
        return Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def percent(value: Any, rate: Any) -> Decimal:
    """`rate` percent of `value`, exact (round it with `round_taka`)."""
    return to_decimal(value) * to_decimal(rate) / 100


def times(value: Any, factor: Any) -> Decimal:
    return to_decimal(value) * to_decimal(factor)


def divided(value: Any, divisor: Any) -> Decimal:
    """`value / divisor` to 28 significant digits (Decimal's context); round it for screens."""
    return to_decimal(value) / to_decimal(divisor)


def plus(value: Any, other: Any) -> Decimal:
    return to_decimal(value) + to_decimal(other)


def minus(value: Any, other: Any) -> Decimal:
    return to_decimal(value) - to_decimal(other)


def round_taka(value: Any, places: int = 2) -> Decimal:
    """Half-up to `places` decimals: 2 (the paisa, default) or 0 (whole taka)."""
    return to_decimal(value).quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)


FILTERS = {"percent": percent, "times": times, "divided": divided, "plus": plus, "minus": minus,
           "round_taka": round_taka, "decimal": to_decimal}
