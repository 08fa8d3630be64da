"""eCourier's typed errors, on top of integrations/base.py, and the rules that read them from
an answer's error texts (client.py applies them)."""
from __future__ import annotations

from server.integrations.base import UpstreamAuthError, UpstreamError, UpstreamRejected, UpstreamUnavailable
from server.metrics import register_error_codes

from .values import as_strings

UPSTREAM = "ecourier"

class ECourierNotFound(UpstreamRejected):
    """No such parcel / tracking / transaction, or a list lookup found nothing."""


class ECourierInvalidRequest(UpstreamRejected):
    """eCourier says the request is incomplete or wrong ("Invalid Request", missing data)."""


class ECourierInvalidId(ECourierInvalidRequest):
    """Tracking was asked with no usable product id / ECR number."""


class ECourierInvalidNumber(ECourierInvalidRequest):
    """Not a valid Bangladeshi mobile number (eCourier's verdict, or ours before sending)."""


class ECourierInvalidAmount(ECourierInvalidRequest):
    """Top-up amount outside eCourier's limits (50 to 1,000 TK)."""


class ECourierInvalidPackage(ECourierInvalidRequest):
    """The package code does not exist or is not assigned to this account."""


class ECourierDuplicateOrder(UpstreamRejected):
    """An order with this product id and mobile exists already: after an uncertain place_order,
    this means the first attempt went through."""


class ECourierNotCancelled(UpstreamRejected):
    """The parcel exists but eCourier did not cancel it (no longer "Initiated")."""


class ECourierInsufficientBalance(UpstreamRejected):
    """The account's COD balance cannot pay for the SMS / top-up / service."""


class ECourierNotEnabled(UpstreamRejected):
    """The service is not set up for this account (needs eCourier support: SMS rate, masking
    name, fraud-check subscription)."""


class ECourierSmsNotSent(UpstreamRejected):
    """No SMS went out; `wrong` lists the numbers eCourier refused."""

    @property
    def wrong(self) -> tuple[str, ...]:
        return as_strings(self.body.get("wrong")) if isinstance(self.body, dict) else ()


class ECourierBusy(UpstreamUnavailable):
    """eCourier said "Unable to process now. Please try again later": nothing happened, so
    even a write may be repeated later."""


# Matched in order against the lower-cased error texts of a failed body; eCourier reuses
# response codes (401 means "bad credentials", "invalid mobile" or "invalid transaction"
# depending on the endpoint), so the text decides, the code only breaks ties.
ERROR_RULES: tuple[tuple[str, type[UpstreamError], str], ...] = (
    ("unauthorized access", UpstreamAuthError, "unauthorized"),
    ("no data found", ECourierNotFound, "no_data"),
    ("invalid tracking", ECourierNotFound, "invalid_tracking"),
    ("invalid transaction id", ECourierNotFound, "invalid_transaction"),
    ("not found by your search", ECourierNotFound, "not_found"),
    ("please set product id or ecr", ECourierInvalidId, "invalid_id"),
    ("invalid package", ECourierInvalidPackage, "invalid_package"),
    ("duplicate product id", ECourierDuplicateOrder, "duplicate"),
    ("invalid number", ECourierInvalidNumber, "invalid_number"),
    ("invalid mobile number", ECourierInvalidNumber, "invalid_number"),
    ("insufficient cod balance", ECourierInsufficientBalance, "insufficient_balance"),
    ("contact with ecourier support to enjoy", ECourierNotEnabled, "not_enabled"),
    ("sms rate not define", ECourierNotEnabled, "sms_rate_missing"),
    ("masking name missing", ECourierNotEnabled, "masking_missing"),
    ("not cancel", ECourierNotCancelled, "not_cancelled"),
    ("sms not sent", ECourierSmsNotSent, "sms_not_sent"),
    ("top up amount must be", ECourierInvalidAmount, "invalid_amount"),
    ("unable to process now", ECourierBusy, "busy"),
    ("unable to insert orders", UpstreamUnavailable, "insert_failed"),
    ("missing", ECourierInvalidRequest, "missing_data"),
    ("invalid request", ECourierInvalidRequest, "invalid_request"),
    ("invalid data", ECourierInvalidRequest, "invalid_data"),
)
register_error_codes([*(word for _, _, word in ERROR_RULES), "invalid_id", "no_data", "invalid_number", "401"])
