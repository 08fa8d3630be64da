"""What the SMS gateway clients (AamarSMS, DiniSoft) share.

- part counting: `is_gsm7`, `sms_parts` (what a message costs on either gateway);
- provider-neutral results (`SmsAccepted`, `DeliveryStatus`, `SmsBalance`) so an action can
  fail over from one gateway to the other without caring which answered;
- SMS-specific typed errors on top of integrations/base.py;
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal


from server.integrations.base import UpstreamRejected

# --- part counting ------------------------------------------------------------------------

# GSM 03.38 basic table (minus ESC) and the extension table, whose characters cost 2 septets.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153  # a multipart message loses 7 septets per part to the UDH
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """True when `text` fits the GSM-7 alphabet. Plain ASCII counts as GSM-7 (gateways
    transliterate the few ASCII characters GSM lacks, such as the backtick)."""
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED or ord(ch) < 128 for ch in text)


def sms_parts(text: str) -> int:
    """How many SMS parts `text` needs: GSM-7 160 single / 153 per part, UCS-2 (Bengali)
    70 single / 67 per part. Extension characters ({ } [ ] ~ ^ | \\ €) cost two septets; UCS-2
    counts UTF-16 units, so an emoji costs two. Empty text needs 0 parts (nothing to send)."""
    if not text:
        return 0
    if is_gsm7(text):
        units = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in text)
        single, part = GSM7_SINGLE, GSM7_PART
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = UCS2_SINGLE, UCS2_PART
    return 1 if units <= single else math.ceil(units / part)


# --- results ------------------------------------------------------------------------------

DeliveryState = Literal["pending", "sent", "delivered", "failed", "unknown"]


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient of a submission: `accepted` False means the gateway did not send to it."""

    msisdn: str
    accepted: bool
    status: str = ""  # the gateway's own word ("Sent", "Failed", "Delivered", "ACCEPTD")


@dataclass(frozen=True)
class SmsAccepted:
    """The gateway took the message. `parts` is per recipient (our count: neither gateway
    reports it). `message_ids` may be empty when the gateway gives none (AamarSMS's send)."""

    provider: str
    message_ids: tuple[str, ...]
    parts: int
    recipients: tuple[RecipientStatus, ...]
    cost: Decimal | None = None

    @property
    def message_id(self) -> str | None:
        return self.message_ids[0] if self.message_ids else None

    @property
    def failed(self) -> tuple[str, ...]:
        """Recipients the gateway refused inside an otherwise accepted bulk send."""
        return tuple(r.msisdn for r in self.recipients if not r.accepted)


@dataclass(frozen=True)
class DeliveryStatus:
    provider: str
    message_id: str
    state: DeliveryState
    provider_status: str  # verbatim ("DELIVRD", "SENT", ...), for support tickets
    delivered_at: datetime | None = None

    @property
    def final(self) -> bool:
        return self.state in ("delivered", "failed")


@dataclass(frozen=True)
class SmsBalance:
    provider: str
    amount: Decimal


# --- errors -------------------------------------------------------------------------------

class InvalidRecipient(UpstreamRejected):
    """The number is unusable. Raised before any call for numbers we cannot normalise
    (nothing was sent), or from the gateway's own "recipient empty" code."""


class SmsFailed(UpstreamRejected):
    """The gateway answered but sent nothing (every recipient failed / "request failed").
    Not retryable on the same route; failing over to the other gateway cannot duplicate."""


class InsufficientBalance(UpstreamRejected):
    """Account (or reseller) balance too low. Retryable after a top-up, or on the other route;
    nothing was sent."""

    retryable = True


def invalid_recipient(upstream: str, raw: Any) -> InvalidRecipient:
    # The detail repeats the number so support can see it; numbers are not secrets.
    return InvalidRecipient(upstream, "invalid_number", f"not a Bangladeshi mobile number: {raw!r}")

