"""Which routes, in which order, for one recipient.

- An address BDApps gave us ("tel:..."):
  - a masked id (not a number): BDApps only, no other route can address it;
  - a number: the configured order (default bdapps, aamarsms, dinisoft).
- A plain number (typed in a flow, e.g. a recharge recipient):
  - on an operator BDApps serves (Robi 018, Airtel 016 by default): the configured order;
  - on any other operator (GP 017/013, Banglalink 019/014, Teletalk 015): the SMS gateways
    first, BDApps last (a ported number may still be on Robi/Airtel).
- Anything else (not a number, not a BDApps address): no route.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from server.config import KNOWN_ROUTES, parse_routes
from server.msisdn import is_tel_address, local, prefixes_of

from .routes import BDAPPS, SmsRoute

DEFAULT_ROUTES = KNOWN_ROUTES  # names and their parser: server/config.py (ALAP_SMS_ROUTES)
BDAPPS_OPERATOR_PREFIXES = prefixes_of("Airtel", "Robi")


class RoutingPolicy:
    def __init__(self, order: Sequence[str] = DEFAULT_ROUTES, *,
                 bdapps_prefixes: Sequence[str] = BDAPPS_OPERATOR_PREFIXES) -> None:
        self.order = parse_routes(order)
        self.bdapps_prefixes = tuple(bdapps_prefixes)

    def routes_for(self, to: str, available: Mapping[str, SmsRoute]) -> list[SmsRoute]:
        """The routes to try for `to`, best first, among the configured and available ones."""
        names = [n for n in self.order if n in available]
        number = local(to)
        if is_tel_address(to):
            if number is None:  # masked id: only BDApps knows who it is
                names = [n for n in names if n == BDAPPS]
        elif number is None:
            names = []
        elif number[:3] not in self.bdapps_prefixes:
            names = [n for n in names if n != BDAPPS] + [n for n in names if n == BDAPPS]
        return [available[n] for n in names if available[n].reaches(to)]
