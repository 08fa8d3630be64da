"""eCare's codes (operator, number type, recharge state) and the typed answers of its calls."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, IntEnum

from server.msisdn import require_local


class Operator(IntEnum):
    """eCare operator codes: the third digit of the number prefix (017 -> 7)."""

    GRAMEENPHONE = 7  # 017
    GRAMEENPHONE_013 = 3  # 013
    BANGLALINK = 9  # 019
    BANGLALINK_014 = 4  # 014
    ROBI = 8  # 018
    AIRTEL = 6  # 016
    TELETALK = 5  # 015

    @classmethod
    def for_msisdn(cls, msisdn: str) -> "Operator":
        """Guess from the prefix. Ported numbers keep their prefix, so prefer a known operator."""
        return cls(int(require_local(msisdn)[2]))


class NumberType(IntEnum):
    PREPAID = 1
    POSTPAID = 2
    SKITTO = 3
    POWERLOAD = 4  # PowerLoad / G.Store / Amar Offer


class RechargeState(str, Enum):
    RECEIVED = "RECEIVED"  # MRC answer only: submitted, not yet final
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    @property
    def final(self) -> bool:
        return self in (RechargeState.SUCCESS, RechargeState.FAILED)


@dataclass(frozen=True)
class RechargeSubmission:
    """MRC accepted the request (RECEIVED). Poll `recharge_status` for the final state."""

    refid: str
    trxid: str | None
    operator: str
    number: str
    amount: Decimal | None
    message: str
    state: RechargeState = RechargeState.RECEIVED


@dataclass(frozen=True)
class RechargeStatus:
    refid: str
    state: RechargeState
    trxid: str | None
    message: str


@dataclass(frozen=True)
class WalletBalance:
    main_balance: Decimal
    stock_balance: Decimal | None
    commission_type: str
    commission_rate: Decimal | None
    message: str


@dataclass(frozen=True)
class OfferPack:
    offer_id: str
    operator: Operator | None
    number_type: NumberType | None
    title: str
    price: Decimal
    validity: str
    details: str
