"""What eCourier calls take and answer: the order to book and the typed results."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from .values import DHAKA

PAYMENT_METHODS = ("COD", "POS", "MPAY", "CCRD")

@dataclass(frozen=True)
class OrderAnswer:
    """eCourier's answer to booking or cancelling one order: the same two facts either way."""

    tracking_id: str  # "ECR..."
    message: str


@dataclass(frozen=True)
class StatusEvent:
    status: str  # "Delivered", "In Transit", ...
    comment: str
    at: datetime | None  # Asia/Dhaka; None when eCourier's time could not be read
    time_text: str  # the time exactly as eCourier wrote it


@dataclass(frozen=True)
class Parcel:
    tracking_id: str  # REFID, "ECR..."
    product_id: str
    status: StatusEvent | None  # the newest event
    history: tuple[StatusEvent, ...]  # newest first
    company: str = ""
    recipient_name: str = ""
    recipient_mobile: str = ""
    recipient_address: str = ""
    recipient_area: str = ""
    parcel_type: str = ""
    booked_at: datetime | None = None
    agent: str = ""
    payment_method: str = ""
    payment_status: str = ""
    delivery_timing: str = ""
    coverage: str = ""
    weight: str = ""
    product_price: Decimal | None = None
    shipping_price: Decimal | None = None
    cod: Decimal | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and self.status.status.lower() == "delivered"


@dataclass(frozen=True)
class TrackResult:
    """Every parcel matching the query: a product id that is not unique matches several."""

    parcels: tuple[Parcel, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.parcels) > 1

    @property
    def latest(self) -> Parcel:
        """The parcel whose status changed last (the only one, when not ambiguous)."""
        floor = datetime.min.replace(tzinfo=DHAKA)
        return max(self.parcels, key=lambda p: (p.status.at or floor) if p.status else floor)


@dataclass(frozen=True)
class Package:
    code: str  # "#2505", what place_order wants as package_code
    name: str
    shipping_charge: Decimal | None
    weight: str
    delivery_time: str
    coverage_id: str
    coverage: str


@dataclass(frozen=True)
class NamedValue:
    """One entry of the city/thana/post code/area/branch lists: show `name`, send `value`."""

    name: str
    value: str


@dataclass(frozen=True)
class FraudStatus:
    customer_status: str  # eCourier's text: "Warning!", "Verified by eCourier", ...
    verdict: Literal["warning", "new", "verified", "unknown"]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SmsResult:
    message: str
    wrong: tuple[str, ...]  # numbers eCourier did not send to (response_code 206)

    @property
    def partial(self) -> bool:
        return bool(self.wrong)


@dataclass(frozen=True)
class TopUp:
    """A booster top-up as eCourier reports it, when accepted and when asked about later."""

    transaction_id: str
    message: str
    recharged: bool | None = None  # eCourier's `success` on a status query; None: just accepted


@dataclass(frozen=True)
class OrderRequest:
    """One parcel to book. Field names follow the API document's parameter table; optional fields left
    as None are not sent at all (eCourier applies its documented defaults)."""

    pick_district: str
    pick_thana: str
    pick_union: str  # pickup post code
    pick_address: str
    pick_mobile: str
    pick_hub: int | str  # branch id from branch_list()
    ep_id: int | str
    recipient_name: str
    recipient_mobile: str
    recipient_city: str
    recipient_area: str
    recipient_thana: str
    recipient_union: str  # recipient post code
    recipient_address: str
    package_code: str  # from packages(), e.g. "#2505"
    product_price: int | str
    payment_method: str = "COD"  # COD, POS, MPAY or CCRD
    ep_name: str | None = None
    pick_contact_person: str | None = None
    pick_division: str | None = None
    recipient_division: str | None = None
    recipient_district: str | None = None
    parcel_detail: str | None = None
    actual_product_price: int | str | None = None
    number_of_items: int | str | None = None
    order_code: str | None = None  # your product/order id; eCourier rejects a duplicate
