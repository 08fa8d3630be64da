"""Values that actions put in session variables and flows show through `_()`: operator names,
eCourier statuses, eCare number types. Marked here so `alap translate --engine` keeps their
translations (nothing else in the code spells them as literals)."""
from __future__ import annotations

from ..render.system import N_

OPERATORS = (N_("Grameenphone"), N_("Banglalink"), N_("Robi"), N_("Airtel"), N_("Teletalk"),
             N_("All operators"))
PARCEL_STATUSES = (N_("Initiated"), N_("Initiated API"), N_("Picked Up"), N_("In Source Branch"),
                   N_("In Transit"), N_("In Destination Branch"), N_("On the way to Delivery"),
                   N_("Delivered"), N_("Hold"), N_("Returned"), N_("Cancelled"), N_("Unknown"),
                   N_("No updates yet"))
NUMBER_TYPES = (N_("Prepaid"), N_("Postpaid"), N_("Skitto"), N_("Power Load"), N_("All numbers"))
