"""Bangladeshi mobile numbers and Bengali digits: the one place that parses, checks and masks them.

Every layer imports this leaf module (it imports nothing of ours): the engine's `bd_mobile`
validator, the BDApps payloads, the SMS routes and gateways, eCare, eCourier, the ledger
records, the receipts and the log redactor.

Forms:
- local `01XXXXXXXXX` (what flows, the ledger and eCare/eCourier use);
- international `8801XXXXXXXXX` (what the SMS gateways and BDApps `tel:` addresses carry).
`local()` / `international()` accept any common spelling of a number: `01...`, `1...` (ten
digits), `880...`, `+880...`, `00880...`, a `tel:` prefix (any case), spaces, dashes, dots,
parentheses and Bengali digits. A BDApps masked id (`tel:` + an opaque hash such as
`tel:B%3C4pbgsm...`) is not a number: it parses as None and is passed on byte for byte by
the callers, never rewritten.

Why not the `phonenumbers` package (checked with 9.0.x): it parses and validates these forms
too, but (1) its carrier data names 016 "Robi" (Airtel merged into Robi) and 015 "TeleTalk",
while eCare codes, our flows and the BDApps routing rule (messaging/policy.py) need Airtel as
its own operator; a data update in that package would silently change routing and recharge
codes; (2) it accepts 011 (Citycell, closed) as valid; (3) it installs 48 MB and parses in
about 26 us against about 1 us here, and the log redactor masks every log line. One numbering
plan with one fixed 11-digit mobile format is one regular expression; the operator table is ours.
"""
from __future__ import annotations

import re

# --- Bengali digits --------------------------------------------------------------------------

BENGALI_DIGITS = "০১২৩৪৫৬৭৮৯"
_BENGALI_TO_ASCII = str.maketrans(BENGALI_DIGITS, "0123456789")
_ASCII_TO_BENGALI = str.maketrans("0123456789", BENGALI_DIGITS)


def normalise_digits(text: str) -> str:
    """Bengali digits (০-৯) in subscriber input become ASCII digits before matching."""
    return text.translate(_BENGALI_TO_ASCII)


def bengali_digits(text: str) -> str:
    return text.translate(_ASCII_TO_BENGALI)


# --- operators by prefix ---------------------------------------------------------------------

# Prefix -> operator, by the numbering plan. Mobile number portability means a number may
# have moved since: flows say "by its prefix" and let the subscriber correct it.
OPERATOR_BY_PREFIX = {
    "013": "Grameenphone", "017": "Grameenphone",
    "014": "Banglalink", "019": "Banglalink",
    "018": "Robi",
    "016": "Airtel",
    "015": "Teletalk",
}


def operator_of(number: str) -> str | None:
    """The operator of a number by its prefix (any spelling `local()` accepts), or None."""
    found = local(number)
    return OPERATOR_BY_PREFIX.get(found[:3]) if found else None


def prefixes_of(*operators: str) -> tuple[str, ...]:
    """The prefixes of the named operators: prefixes_of("Robi") == ("018",)."""
    return tuple(p for p, name in OPERATOR_BY_PREFIX.items() if name in operators)


# --- parsing -----------------------------------------------------------------------------------

_LOCAL = re.compile(r"01[3-9]\d{8}")
_ANY = re.compile(r"(?:880|0)?(1[3-9]\d{8})")
_SEPARATORS = re.compile(r"[\s\-().]")


def is_tel_address(address: str) -> bool:
    """A BDApps address ("tel:8801..." or a masked "tel:<hash>")."""
    return address.strip()[:4].lower() == "tel:"


def local(raw: str | None) -> str | None:
    """`01XXXXXXXXX` for any common spelling of a Bangladeshi mobile number, None otherwise
    (masked BDApps ids, other countries, wrong lengths, unassigned prefixes 010-012)."""
    value = (raw or "").strip()
    if value[:4].lower() == "tel:":
        value = value[4:]
    value = normalise_digits(_SEPARATORS.sub("", value))
    if value.startswith("+"):
        value = value[1:]
    elif value.startswith("00880"):
        value = value[2:]
    match = _ANY.fullmatch(value)
    return "0" + match.group(1) if match else None


def international(raw: str | None) -> str | None:
    """`8801XXXXXXXXX` for what `local()` accepts, None otherwise."""
    found = local(raw)
    return "88" + found if found else None


def require_local(raw: str) -> str:
    """`local()`, raising ValueError (without the number: it is personal data) for a non-number."""
    found = local(raw)
    if found is None:
        raise ValueError("not a Bangladeshi mobile number")
    return found


def require_international(raw: str) -> str:
    """`international()`, raising ValueError for a non-number (a masked id included)."""
    return "88" + require_local(raw)


def is_local(number: str) -> bool:
    """Exactly `01XXXXXXXXX` (the stored form: no other spelling)."""
    return _LOCAL.fullmatch(number) is not None


def number_of_address(address: str) -> str | None:
    """01XXXXXXXXX for a plain BDApps `tel: 8801...` address; None for a masked id or for
    anything that is not a `tel:` address."""
    return local(address) if is_tel_address(address) else None


def subscriber_key(address: str) -> str:
    """A stable key for profiles: the address without whitespace ("tel: 880..." and
    "tel:880..." are the same subscriber). Only used as a key, never sent anywhere; a masked
    id stays as opaque as it came."""
    return "".join(address.split())


# --- masking -----------------------------------------------------------------------------------

# 8801812345678, +8801812345678, 01812345678 (also inside "tel:8801..." addresses). Wider than
# `local()` (any 1X prefix) on purpose: masking a look-alike costs nothing, leaking a number does.
_IN_TEXT = re.compile(r"(?<!\d)(?:\+?880|0)(1\d{6})(\d{3})(?!\d)")


def mask_numbers(text: str) -> str:
    """Every number in free text keeps only its last 3 digits (log lines)."""
    return _IN_TEXT.sub(lambda m: "*" * (len(m.group(0)) - 3) + m.group(2), text)
