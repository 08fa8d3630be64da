"""SMS receipts for a recharge's outcome, in the subscriber's language (the record's `language`).

The texts are gettext msgids (English source, Jinja over the receipt's fields) translated by
the same Renderer as the USSD screens, so they live in locales/<lang>/LC_MESSAGES/messages.po.

Who gets what:
- the payer (the dialling subscriber, at the address BDApps gave, masked or not) always gets
  one receipt for the final state: COMPLETED (with the eCare transaction id),
  FAILED_NOT_CHARGED (why, and that nothing was taken), REFUND_REQUIRED (failed, the money
  will be refunded), NEEDS_REVIEW (not confirmed yet, being checked);
- the recipient gets one only when the recharge COMPLETED and they are not the payer (a
  failed recharge gave them nothing and they asked for nothing). When the payer's number is
  unknown (a masked address) the recipient is told, without the sender's number;
- RESOLVED (an operator settled it) sends nothing: the operator's own process speaks to the
  subscriber.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.msisdn import local
from server.render.environment import Renderer
from server.store.ledger import RechargeRecord, RechargeState


def N_(msgid: str) -> str:
    """Marks a msgid for extraction (`pybabel extract`); translated at render time."""
    return msgid


COMPLETED_PAYER = N_("Recharge of {{ amount|taka }} to {{ recipient|digits }} successful."
                     "{% if trx_id %} eCare TrxID: {{ trx_id }}.{% endif %} Ref {{ ref }}")
COMPLETED_RECIPIENT = N_("Your number received a recharge of {{ amount|taka }}"
                         "{% if sender %} from {{ sender|digits }}{% endif %}."
                         "{% if trx_id %} eCare TrxID: {{ trx_id }}.{% endif %}")
NOT_CHARGED = N_("Recharge of {{ amount|taka }} to {{ recipient|digits }} was not done: {{ reason }}. "
                 "No money was taken from your account. Ref {{ ref }}")
REFUND = N_("Recharge of {{ amount|taka }} to {{ recipient|digits }} failed."
            "{% if trx_id %} eCare TrxID: {{ trx_id }}.{% endif %} "
            "The {{ amount|taka }} taken from your account will be refunded. Ref {{ ref }}")
REVIEW = N_("Your recharge of {{ amount|taka }} to {{ recipient|digits }} could not be confirmed yet. "
            "We are checking it; if it did not go through, your money will be refunded. Ref {{ ref }}")

REASON_BALANCE = N_("your balance is too low")
REASON_DECLINED = N_("the payment was declined")
REASON_INVALID = N_("the request was not valid")
REASON_UNAVAILABLE = N_("the recharge service is unavailable right now")

_REASONS = {
    "insufficient_balance": REASON_BALANCE,
    "declined": REASON_DECLINED,
    "invalid": REASON_INVALID,
}

MSGIDS = (COMPLETED_PAYER, COMPLETED_RECIPIENT, NOT_CHARGED, REFUND, REVIEW,
          REASON_BALANCE, REASON_DECLINED, REASON_INVALID, REASON_UNAVAILABLE)

_PAYER_TEXTS = {
    RechargeState.COMPLETED: COMPLETED_PAYER,
    RechargeState.FAILED_NOT_CHARGED: NOT_CHARGED,
    RechargeState.REFUND_REQUIRED: REFUND,
    RechargeState.NEEDS_REVIEW: REVIEW,
}


@dataclass(frozen=True)
class Receipt:
    role: str  # "payer" | "recipient": the record field `<role>_receipt` notes it was sent
    to: str
    text: str
    reply_to_request: bool  # the payer asked for it: sent even if they opted out of notices


def _language(renderer: Renderer, record: RechargeRecord) -> str:
    return record.language if record.language in renderer.languages else renderer.languages[0]


def same_number(record: RechargeRecord) -> bool:
    """Whether the recipient is the payer (only knowable when the payer's number is known)."""
    return local(record.payer_msisdn) == record.recipient or local(record.payer) == record.recipient


def build_receipts(renderer: Renderer, record: RechargeRecord) -> list[Receipt]:
    """The receipts the record's (final) state calls for; [] for non-final and RESOLVED."""
    source = _PAYER_TEXTS.get(record.state)
    if source is None:
        return []
    lang = _language(renderer, record)
    reason_id = _REASONS.get(record.reason, REASON_UNAVAILABLE)
    context: dict[str, Any] = {
        "amount": record.amount, "recipient": record.recipient, "trx_id": record.ecare_trx_id or "",
        "ref": record.id, "reason": renderer.gettext(lang, reason_id),
        "sender": local(record.payer_msisdn) or "",
    }
    receipts = [Receipt("payer", record.payer, renderer.render_text(lang, source, context), True)]
    if record.state is RechargeState.COMPLETED and not same_number(record):
        receipts.append(Receipt("recipient", record.recipient,
                                renderer.render_text(lang, COMPLETED_RECIPIENT, context), False))
    return receipts
