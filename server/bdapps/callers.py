"""Who may call the BDApps callback routes (`/bdapps/*`).

hSenid's platform calls an application from a small, fixed set of addresses, and BDApps' own
guidance is to accept callbacks from those addresses only: anyone who learns the callback URL
could otherwise type for a subscriber, replay a session's hops or forge delivery reports.

`BDAPPS_ALLOWED_IPS` (comma-separated CIDRs) is that allow-list. A caller outside it gets
HTTP 403 with the BDApps-style body `{"statusCode":"E1313",...}` before the route reads the
body, so nothing is stored and nothing is sent. Unset: any peer (`alap serve` warns once at start).

The caller is the TCP peer, unless the peer is one of `ALAP_TRUSTED_PROXIES`: then
`X-Forwarded-For` is read from the right, skipping the trusted proxies, and the first address
that is not one of them is the caller (the rightmost untrusted hop: everything left of it was
written by that caller and may be forged). Nobody else's `X-Forwarded-For` is believed.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
import structlog
from aiohttp import web

from .payloads import error_body

log = structlog.get_logger("alap.callers")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED = error_body("E1313", "Authentication failed. The caller's address is not allowed to call this application.")


def parse_networks(text: str) -> tuple[Network, ...]:
    """`"10.0.0.0/8, 192.0.2.7"` -> networks (a bare address is a /32 or /128). Raises
    ValueError naming the first entry that is not a CIDR."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            why = " (host bits set)" if "host bits" in str(exc) else ""
            raise ValueError(f"{item!r} is not a CIDR such as 10.0.0.0/8 or 192.0.2.7{why}") from None
    if not networks:
        raise ValueError("lists no CIDR")
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.1.2.3 on a dual-stack socket
    return mapped or address


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


@dataclass(frozen=True)
class CallerPolicy:
    allowed: tuple[Network, ...] | None  # None: any peer
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, allowed_ips: str | None, trusted_proxies: str | None) -> "CallerPolicy":
        return cls(parse_networks(allowed_ips) if allowed_ips else None,
                   parse_networks(trusted_proxies) if trusted_proxies else ())

    def caller(self, peer: str | None, forwarded_for: list[str]) -> Address | None:
        """The caller's address: the peer, or (behind trusted proxies) the rightmost
        untrusted X-Forwarded-For hop. None when it cannot be read."""
        address = _address(peer) if peer else None
        if address is None or not _within(address, self.trusted_proxies):
            return address
        hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:  # garbage in the chain: nothing left of it can be trusted
                return None
            if not _within(address, self.trusted_proxies):
                return address
        return address  # every hop is a trusted proxy: the leftmost one called

    # Answers for callers without X-Forwarded-For, by peer: BDApps calls from a handful of
    # addresses, and parsing one costs more than the rest of the check (once per callback).
    _by_peer: dict[str | None, tuple[bool, Address | None]] = field(default_factory=dict, compare=False, repr=False)

    def allows(self, peer: str | None, forwarded_for: list[str]) -> tuple[bool, Address | None]:
        if self.allowed is None:
            return True, None
        if forwarded_for:
            return self._decide(peer, forwarded_for)
        answer = self._by_peer.get(peer)
        if answer is None:
            if len(self._by_peer) >= _PEERS_KEPT:  # a scan from many addresses: start again
                self._by_peer.clear()
            answer = self._by_peer[peer] = self._decide(peer, [])
        return answer

    def _decide(self, peer: str | None, forwarded_for: list[str]) -> tuple[bool, Address | None]:
        caller = self.caller(peer, forwarded_for)
        return caller is not None and _within(caller, self.allowed or ()), caller


_PEERS_KEPT = 1024

CALLER_POLICY = web.AppKey("caller_policy", CallerPolicy)


def refusal(request: web.Request, route: str) -> web.Response | None:
    """403 E1313 for a `/bdapps/*` callback from outside BDAPPS_ALLOWED_IPS, None for an allowed
    caller. Called first by every BDApps route (server/bdapps/routes.py), before anything is read."""
    policy = request.app[CALLER_POLICY]
    if policy.allowed is None:
        return None
    allowed, caller = policy.allows(request.remote, request.headers.getall("X-Forwarded-For", []))
    if allowed:
        return None
    log.warning("callback_caller_refused", route=route, peer=request.remote, caller=str(caller) if caller else None)
    return web.Response(body=REFUSED, status=403, content_type="application/json")


def unrestricted_warning(policy: CallerPolicy) -> str | None:
    """The one line `alap serve` prints at start when any peer may call."""
    if policy.allowed is not None:
        return None
    return ("BDAPPS_ALLOWED_IPS is not set: /bdapps/ussd, /bdapps/sms and /bdapps/sms/report accept "
            "callbacks from any address (set it to the BDApps platform's addresses)")
