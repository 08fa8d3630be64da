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

# Each validator type and the parameters it takes; any other key is an error at load
# (server/engine/state_parser.py), so `minimum:` for `min:` never passes silently.
VALIDATOR_PARAMS: dict[str, tuple[str, ...]] = {
    "text": ("max_length",),
    "regex": ("pattern", "max_length"),
    "integer": ("min", "max"),
    "amount": ("min", "max"),
    "bd_mobile": (),
    "any": ("max_length",),
}


@dataclass(frozen=True)
class Valid:
    value: Any


@dataclass(frozen=True)
class Invalid:
    msgid: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Validator:
    """Any non-empty text, at most `max_length` characters when given."""

    max_length: int | None = None
    kind = "text"
    default_error = "Invalid input. Please try again."

    def check(self, text: str) -> Valid | Invalid:
        if not text:
            return Invalid("Please enter a value.", {})
        if self.max_length is not None and len(text) > self.max_length:
            return self.fail()
        return Valid(text)

    def params(self) -> dict[str, Any]:
        return {}

    def fail(self) -> Invalid:
        return Invalid(self.default_error, self.params())


@dataclass(frozen=True)
class RegexValidator(Validator):
    pattern: str = ""
    kind = "regex"
    default_error = "Invalid input. Please try again."

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def check(self, text: str) -> Valid | Invalid:
        if self.max_length is not None and len(text) > self.max_length:
            return self.fail()
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
    """Taka amounts: digits with at most two decimals, within [min, max]. The value is a
    `Decimal` (exact; the session's JSON stores it as a string and the engine reads it back as
    a Decimal, server/engine/money.py), never a float."""

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
        return self.within(value, value)


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
        return RegexValidator(max_length=_max_length(spec), pattern=pattern)
    if kind == "integer":
        lo, hi = spec.get("min"), spec.get("max")
        for name, value in (("min", lo), ("max", hi)):
            if value is not None and not isinstance(value, int):
                raise ValueError(f"integer validator '{name}' must be an integer")
        return IntegerValidator(min=lo, max=hi)
    if kind == "amount":
        try:
            lo = Decimal(str(spec["min"])) if "min" in spec else None
            hi = Decimal(str(spec["max"])) if "max" in spec else None
        except InvalidOperation:
            raise ValueError("amount validator 'min'/'max' must be numbers") from None
        return AmountValidator(min=lo, max=hi)
    if kind == "bd_mobile":
        return BdMobileValidator()
    if kind in (None, "any", "text"):
        return Validator(max_length=_max_length(spec))
    raise ValueError(f"unknown validator type {kind!r} ({', '.join(VALIDATOR_PARAMS)})")


def _max_length(spec: dict[str, Any]) -> int | None:
    value = spec.get("max_length")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError("'max_length' must be a whole number of characters >= 1")
    return value


def validate_input(validator: Validator, text: str) -> Valid | Invalid:
    return validator.check(normalise_digits(text).strip())
