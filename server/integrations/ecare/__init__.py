"""eCare mobile recharge: `ECareClient` (client.py, with the wire contract), its codes and
results (models.py), its typed errors (errors.py) and the reading of its answers (answers.py).
Importers use this package's names."""
from __future__ import annotations

from .client import ECARE_DEFAULT_URL, ECareClient
from .errors import (
    UPSTREAM, ECareAuthError, ECareDuplicate, ECareInvalid, ECareInvalidRef, ECareLowBalance, ECareMaintenance,
    ECareRejected,
)
from .models import (
    NumberType, OfferPack, Operator, RechargeState, RechargeStatus, RechargeSubmission, WalletBalance,
)

__all__ = [
    "ECARE_DEFAULT_URL", "UPSTREAM", "ECareAuthError", "ECareClient", "ECareDuplicate", "ECareInvalid",
    "ECareInvalidRef", "ECareLowBalance", "ECareMaintenance", "ECareRejected", "NumberType", "OfferPack",
    "Operator", "RechargeState", "RechargeStatus", "RechargeSubmission", "WalletBalance",
]
