"""Input validators for `input` states. Each normalises what it accepts and rejects with a msgid.

The error msgids are English source strings looked up in the catalogs by the renderer; their
`{{ }}` placeholders are filled from the validator's parameters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..msisdn import local as local_number, normalise_digits

@dataclass(frozen=True)
class Valid:
    value: Any


@dataclass(frozen=True)
class Invalid:
    msgid: str
    params: dict[str, Any]


class Validator:
    kind = "any"
    default_error = "Invalid input. Please try again."

    def check(self, text: str) -> Valid | Invalid:
        return Valid(text) if text else Invalid("Please enter a value.", {})

    def params(self) -> dict[str, Any]:
        return {}

    def fail(self) -> Invalid:
        return Invalid(self.default_error, self.params())


@dataclass(frozen=True)
class RegexValidator(Validator):
    pattern: str
    kind = "regex"
    default_error = "Invalid input. Please try again."

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def check(self, text: str) -> Valid | Invalid:
        return Valid(text) if self._compiled.fullmatch(text) else self.fail()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RangeValidator(Validator):
    """A number within [min, max] (either bound may be None); subclasses read the number."""

    min: Any = None
    max: Any = None

    def params(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}

    def within(self, value: Any, stored: Any) -> Valid | Invalid:
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            return self.fail()
        return Valid(stored)


@dataclass(frozen=True)
class IntegerValidator(RangeValidator):
    """Whole numbers (at most 9 digits) within [min, max]; stored as an int."""

    kind = "integer"
    default_error = "Enter a number from {{ min|number }} to {{ max|number }}."

    def check(self, text: str) -> Valid | Invalid:
        if not re.fullmatch(r"\d{1,9}", text):
            return self.fail()
        return self.within(int(text), int(text))


@dataclass(frozen=True)
class AmountValidator(RangeValidator):
    """Taka amounts: digits with at most two decimals, within [min, max]. Stored as a string
    (exact decimal) so session JSON never carries a float."""

    kind = "amount"
    default_error = "Enter an amount from {{ min|taka }} to {{ max|taka }}."

    def check(self, text: str) -> Valid | Invalid:
        cleaned = text.replace(",", "")
        if not re.fullmatch(r"\d{1,7}(?:\.\d{1,2})?", cleaned):
            return self.fail()
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            return self.fail()
        return self.within(value, str(value))


@dataclass(frozen=True)
class BdMobileValidator(Validator):
    """Bangladeshi mobile numbers in any common form; stored as 01XXXXXXXXX."""

    kind = "bd_mobile"
    default_error = "Enter a valid mobile number, like 01812345678."

    def check(self, text: str) -> Valid | Invalid:
        number = local_number(text)
        return Valid(number) if number else self.fail()


def build_validator(spec: dict[str, Any]) -> Validator:
    """Build from a flow's `validate:` mapping. Raises ValueError with a readable message."""
    kind = spec.get("type")
    if kind == "regex":
        pattern = spec.get("pattern")
        if not isinstance(pattern, str):
            raise ValueError("regex validator needs a 'pattern' string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return RegexValidator(pattern)
    if kind == "integer":
        lo, hi = spec.get("min"), spec.get("max")
        for name, value in (("min", lo), ("max", hi)):
            if value is not None and not isinstance(value, int):
                raise ValueError(f"integer validator '{name}' must be an integer")
        return IntegerValidator(lo, hi)
    if kind == "amount":
        try:
            lo = Decimal(str(spec["min"])) if "min" in spec else None
            hi = Decimal(str(spec["max"])) if "max" in spec else None
        except InvalidOperation:
            raise ValueError("amount validator 'min'/'max' must be numbers") from None
        return AmountValidator(lo, hi)
    if kind == "bd_mobile":
        return BdMobileValidator()
    if kind in (None, "any", "text"):
        return Validator()
    raise ValueError(f"unknown validator type {kind!r} (regex, integer, amount, bd_mobile, text)")


def validate_input(validator: Validator, text: str) -> Valid | Invalid:
    return validator.check(normalise_digits(text).strip())
