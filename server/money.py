"""Taka amounts: the one check every money path makes before anything is written or sent.

Used by the CAAS debit (integrations/caas.py: paisa allowed, at most 2 decimals), the eCare
recharge (integrations/ecare.py: whole taka) and the ledger's new records
(store/ledger/records.py: whole taka, because we never debit what eCare cannot recharge).
A float is refused outright: money is never rounded silently.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

PAISA = Decimal("0.01")


def parse_taka(amount: Decimal | int | str, *, whole: bool = False) -> Decimal:
    """A positive amount as an exact Decimal. TypeError for a float (or bool); ValueError for
    anything not a number, zero or less, more than 2 decimals, or (with `whole`) any paisa."""
    if isinstance(amount, (float, bool)):
        raise TypeError("amount must be Decimal, int or str, not float")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"amount is not a number: {amount!r}") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"amount must be positive: {amount!r}")
    if whole and value != value.to_integral_value():
        raise ValueError(f"amount must be a positive whole number of taka: {amount!r}")
    if value.quantize(PAISA) != value:
        raise ValueError(f"amount has more than 2 decimals: {amount!r}")
    return value


def taka_text(value: Decimal) -> str:
    """"5" for whole taka, "12.50" with paisa (the wire form of CAAS and the ledger)."""
    return str(int(value)) if value == value.to_integral_value() else str(value.quantize(PAISA))
