"""Numbers and taka per locale, with Babel.

Bengali screens use Babel's bn_BD patterns (lakh grouping, ৳ after the amount) with Bengali
digits; English screens use lakh grouping too (as Bangladesh writes it) and "Tk" rather than ৳
so that an English screen stays GSM-7 and fits the 160-character budget.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency, format_decimal

from ..msisdn import bengali_digits


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def format_number(value: Any, lang: str) -> str:
    number = _decimal(value)
    if number is None:
        return str(value)
    if lang == "bn":
        return bengali_digits(format_decimal(number, locale="bn_BD"))
    return format_decimal(number, format="#,##,##0.##", locale="en_IN")


def format_taka(value: Any, lang: str) -> str:
    amount = _decimal(value)
    if amount is None:
        return str(value)
    # To the paisa, half-up as money is rounded here (Babel would round half-even).
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if lang == "bn":
        return bengali_digits(format_currency(amount, "BDT", locale="bn_BD"))
    return "Tk " + format_decimal(amount, format="#,##,##0.00", locale="en_IN")


def localise_digits(value: Any, lang: str) -> str:
    return bengali_digits(str(value)) if lang == "bn" else str(value)
