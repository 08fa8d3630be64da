"""eCourier reseller API: `ECourierClient` (client.py), its results (models.py), its typed
errors (errors.py), the reading of its answers (answers.py) and its lenient value readers
(values.py). Importers use this package's
names; the wire contract is in docs/upstreams.md and client.py's docstring."""
from __future__ import annotations

from .client import DEFAULT_BASE_URL, ECourierClient, normalize_mobile
from .errors import (
    UPSTREAM, ECourierBusy, ECourierDuplicateOrder, ECourierInsufficientBalance, ECourierInvalidAmount,
    ECourierInvalidId, ECourierInvalidNumber, ECourierInvalidPackage, ECourierInvalidRequest,
    ECourierNotCancelled, ECourierNotEnabled, ECourierNotFound, ECourierSmsNotSent,
)
from .models import (
    PAYMENT_METHODS, FraudStatus, NamedValue, OrderAnswer, OrderRequest, Package, Parcel,
    SmsResult, StatusEvent, TopUp, TrackResult,
)
from .values import DHAKA

__all__ = [
    "DEFAULT_BASE_URL", "DHAKA", "PAYMENT_METHODS", "UPSTREAM", "ECourierBusy", "ECourierClient",
    "ECourierDuplicateOrder", "ECourierInsufficientBalance", "ECourierInvalidAmount", "ECourierInvalidId",
    "ECourierInvalidNumber", "ECourierInvalidPackage", "ECourierInvalidRequest", "ECourierNotCancelled",
    "ECourierNotEnabled", "ECourierNotFound", "ECourierSmsNotSent", "FraudStatus", "NamedValue",
    "OrderAnswer", "OrderRequest", "Package", "Parcel", "SmsResult", "StatusEvent", "TopUp",
    "TrackResult", "normalize_mobile",
]
