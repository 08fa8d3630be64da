"""Lenient readers for eCourier's values: numbers as strings or numbers ("200", 200, "1,200"),
booleans as true/"true"/1, times in Dhaka time without a zone; blanks and nulls are "".
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

# eCourier's timestamps carry no zone; they are Bangladesh time (UTC+6, no DST).
DHAKA = timezone(timedelta(hours=6), "Asia/Dhaka")

def as_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def as_strings(value: Any) -> tuple[str, ...]:
    """A message/errors/wrong field as texts: a list (nulls and blanks dropped) or one string."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(t for t in (as_text(v) for v in items if not isinstance(v, (dict, list))) if t)


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def as_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    return None


def as_money(value: Any) -> Decimal | None:
    text = as_text(value).replace(",", "")
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def as_whole_number(value: int | str, name: str) -> int:
    try:
        return int(str(value).strip().replace(",", ""))
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None


def as_time(value: Any) -> datetime | None:
    text = as_text(value).replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=DHAKA)
        except ValueError:
            continue
    return None
