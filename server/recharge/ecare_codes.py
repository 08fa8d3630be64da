"""The flow's operator and number type, as names or codes, turned into eCare's codes.

A flow says "GRAMEENPHONE", "gp" or "7"; eCare wants 7 for 017 and 3 for 013
(integrations/ecare/). Checked when a record is REQUESTED (debit_steps.py) and before the
MRC (mrc_steps.py).
"""
from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

from server.integrations.ecare import NumberType, Operator

E = TypeVar("E", bound=IntEnum)

_OPERATOR_ALIASES = {
    "GP": Operator.GRAMEENPHONE, "GRAMEEN": Operator.GRAMEENPHONE, "BL": Operator.BANGLALINK,
    "TT": Operator.TELETALK, "ROBI_AXIATA": Operator.ROBI,
}
_NUMBER_TYPE_ALIASES = {
    "PRE": NumberType.PREPAID, "POST": NumberType.POSTPAID, "POWER_LOAD": NumberType.POWERLOAD,
    "GSTORE": NumberType.POWERLOAD, "G_STORE": NumberType.POWERLOAD, "G.STORE": NumberType.POWERLOAD,
    "AMAR_OFFER": NumberType.POWERLOAD, "AMAROFFER": NumberType.POWERLOAD,
}
# eCare lists Grameenphone as 3/7 and Banglalink as 4/9: the code follows the number's prefix.
_PREFIX_CODES = {(Operator.GRAMEENPHONE, "013"): Operator.GRAMEENPHONE_013,
                 (Operator.BANGLALINK, "014"): Operator.BANGLALINK_014}


def _parse_code(enum: type[E], aliases: dict[str, E], value: str | int, what: str) -> E:
    """A member of `enum` from its code ("7"), its name or an alias, any case, spaces or dashes
    for underscores. ValueError naming `what` otherwise."""
    text = str(value).strip().upper().replace(" ", "_").replace("-", "_")
    if text.isdigit():
        try:
            return enum(int(text))
        except ValueError:
            raise ValueError(f"unknown eCare {what} code {value!r}") from None
    found = enum.__members__.get(text) or aliases.get(text)
    if found is None:
        raise ValueError(f"unknown eCare {what} {value!r}")
    return found


def parse_operator(value: str | int) -> Operator:
    """An eCare operator from its code ("7") or name ("GRAMEENPHONE", "Robi", "gp")."""
    return _parse_code(Operator, _OPERATOR_ALIASES, value, "operator")


def ecare_operator(value: str | int, recipient: str) -> Operator:
    """The operator code to send for this recipient: a named Grameenphone / Banglalink operator
    takes the code of the recipient's prefix (013 -> 3, 014 -> 4); an explicit code is kept."""
    operator = parse_operator(value)
    if str(value).strip().isdigit():
        return operator
    return _PREFIX_CODES.get((operator, recipient[:3]), operator)


def parse_number_type(value: str | int) -> NumberType:
    """An eCare number type from its code ("1") or name ("PREPAID", "skitto")."""
    return _parse_code(NumberType, _NUMBER_TYPE_ALIASES, value, "number type")
