"""`--dry-run`: what a broadcast would send, computed from the FILE alone (nothing is sent,
nothing stored): recipients, bad lines, encoding, parts per message, and per route the
recipients and the SMS parts they cost (the route each number would take under `auto` is the
order of server/messaging/policy.py)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import jinja2

from server.integrations.bdapps import sms_encoding
from server.integrations.sms_parts import sms_parts
from server.messaging import BDAPPS, RoutingPolicy

from .recipients import BadLine, Recipient, read_recipients

ENCODING_NAMES = {"0": "GSM-7 (encoding 0)", "16": "UCS-2 Bengali (encoding 16)"}


@dataclass
class Plan:
    recipients: int = 0
    invalid: int = 0
    encodings: Counter = field(default_factory=Counter)  # encoding -> messages
    parts: Counter = field(default_factory=Counter)  # parts per message -> messages
    routes: dict[str, list[int]] = field(default_factory=dict)  # route -> [recipients, parts]

    def add(self, route: str, text: str) -> None:
        parts = sms_parts(text)
        self.recipients += 1
        self.encodings[sms_encoding(text)] += 1
        self.parts[parts] += 1
        counts = self.routes.setdefault(route, [0, 0])
        counts[0] += 1
        counts[1] += parts

    def lines(self) -> list[str]:
        out = [f"recipients: {self.recipients:,}" + (f" ({self.invalid:,} bad lines skipped)" if self.invalid else "")]
        out.append("encoding: " + ", ".join(f"{ENCODING_NAMES.get(e, e)} x {n:,}" for e, n in sorted(self.encodings.items())))
        out.append("parts per message: " + ", ".join(f"{p} x {n:,}" for p, n in sorted(self.parts.items())))
        for route, (count, parts) in sorted(self.routes.items()):
            out.append(f"route {route}: {count:,} recipients, {parts:,} SMS parts")
        out.append("nothing was sent (dry run)")
        return out


def plan_sms(source: str, template: jinja2.Template, route: str, policy: RoutingPolicy, available: dict,
             lang: str, *, on_bad_line: Callable[[BadLine], None] | None = None) -> Plan:
    plan = Plan()
    for item in read_recipients(source):
        if isinstance(item, BadLine):
            plan.invalid += 1
            if on_bad_line is not None:
                on_bad_line(item)
            continue
        assert isinstance(item, Recipient)
        text = template.render(**item.columns, lang=lang, msisdn=item.address[4:]).strip()
        chosen = route
        if route == "auto":
            routes = policy.routes_for(item.address[4:], available) if available else []
            chosen = routes[0].name if routes else BDAPPS
        plan.add(chosen, text)
    return plan


def plan_to_all(text: str) -> Plan:
    plan = Plan()
    plan.add(BDAPPS, text)
    return plan
