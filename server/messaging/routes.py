"""SMS routes: one way out each (BDApps `/sms/send`, AamarSMS, DiniSoft), one typed outcome.

A route never raises for an upstream failure: it answers a `SendOutcome` that says whether the
message was accepted, and if not, whether it certainly did not go out (`maybe_sent` False) and
whether trying again may help (`retryable`). The sender fails over only on
`outcome.failover` (retryable and certainly not sent).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import structlog

from server.integrations.bdapps import BdappsGateway, SmsSendResult
from server.integrations.aamarsms import AamarSmsClient
from server.integrations.base import (
    UpstreamConnectError, UpstreamError, UpstreamMalformed, UpstreamTimeout, UpstreamUnavailable,
)
from server.integrations.dinisoft import DiniSoftClient
from server.integrations.sms_parts import DeliveryStatus, SmsAccepted, sms_parts
from server.msisdn import international, is_tel_address

log = structlog.get_logger("alap.messaging")

Kind = Literal["reply", "notice", "otp", "receipt"]
KINDS: tuple[str, ...] = ("reply", "notice", "otp", "receipt")

BDAPPS, AAMARSMS, DINISOFT = "bdapps", "aamarsms", "dinisoft"


@dataclass(frozen=True)
class SendOutcome:
    """What one route did with one message.

    accepted: the provider took it; `message_ids` (possibly empty: AamarSMS gives none) and
      `parts` (what it is billed: 70 Bengali / 160 GSM-7 characters for one part).
    otherwise: `code` (the provider's code, or connect / timeout / http_503 ...), `retryable`
      (the same call may succeed later), `maybe_sent` (no clear answer: it may have gone out,
      so it must not be sent again anywhere), `limit` ("second" for BDApps E1318, "day" for
      E1319).
    """

    provider: str
    accepted: bool
    message_ids: tuple[str, ...] = ()
    parts: int = 0
    request_id: str | None = None
    code: str = ""
    detail: str = ""
    retryable: bool = False
    maybe_sent: bool = False
    limit: Literal["second", "day"] | None = None

    @property
    def message_id(self) -> str | None:
        return self.message_ids[0] if self.message_ids else None

    @property
    def failover(self) -> bool:
        """Safe and useful to try the next route: refused for a passing reason, surely unsent."""
        return not self.accepted and not self.maybe_sent and self.retryable


@runtime_checkable
class SmsRoute(Protocol):
    name: str

    def reaches(self, to: str) -> bool:
        """Whether this route can address `to` at all (masked BDApps ids: only BDApps)."""
        ...

    async def send(self, to: str, text: str, *, kind: str) -> SendOutcome: ...


@runtime_checkable
class PollableRoute(SmsRoute, Protocol):
    async def delivery_status(self, message_id: str) -> DeliveryStatus: ...


# --- BDApps -------------------------------------------------------------------------------------

class BdappsRoute:
    """`/sms/send` through the app's BDApps account. Addresses BDApps gave us ("tel:...", masked
    ids included) go byte for byte; a plain number goes as "tel:8801XXXXXXXXX"."""

    name = BDAPPS

    def __init__(self, gateway: BdappsGateway, *, source_address: str | None = None,
                 delivery_report: bool = True) -> None:
        self.gateway = gateway
        self.source_address = source_address or None
        self.delivery_report = delivery_report

    def reaches(self, to: str) -> bool:
        return is_tel_address(to) or international(to) is not None

    def destination(self, to: str) -> str:
        if is_tel_address(to):
            return to
        number = international(to)
        if number is None:
            raise ValueError("not an address BDApps can reach")
        return "tel:" + number

    async def send(self, to: str, text: str, *, kind: str) -> SendOutcome:
        result = await self.gateway.send_sms([self.destination(to)], text, source_address=self.source_address,
                                             delivery_report=self.delivery_report)
        return bdapps_outcome(result, sms_parts(text))


def bdapps_outcome(result: SmsSendResult, parts: int) -> SendOutcome:
    if result.ok:
        return SendOutcome(BDAPPS, True, result.message_ids, parts, result.request_id, result.status_code,
                           result.detail)
    limit: Literal["second", "day"] | None = None
    if result.outcome == "rate_limited":
        limit = "second"
    elif result.outcome == "daily_limit":
        limit = "day"
    return SendOutcome(BDAPPS, False, (), parts, result.request_id, result.status_code, result.detail,
                       retryable=result.retryable, maybe_sent=result.outcome == "ambiguous", limit=limit)


# --- SMS gateways -------------------------------------------------------------------------------

def _accepted(provider: str, accepted: SmsAccepted) -> SendOutcome:
    return SendOutcome(provider, True, accepted.message_ids, accepted.parts)


def gateway_outcome(provider: str, exc: UpstreamError, parts: int) -> SendOutcome:
    """Map a gateway client's typed error.

    Timeout, or an answer we could not read: it may have been sent (no failover).
    Connection refused / 5xx / 429 / low balance: certainly not sent, retryable (failover).
    Anything else (credentials, invalid number, "request failed"): not retryable.
    """
    if isinstance(exc, (UpstreamTimeout, UpstreamMalformed)):
        return SendOutcome(provider, False, (), parts, None, exc.code, exc.detail, retryable=False, maybe_sent=True)
    retryable = isinstance(exc, (UpstreamConnectError, UpstreamUnavailable)) or exc.retryable
    return SendOutcome(provider, False, (), parts, None, exc.code, exc.detail, retryable=retryable)


class GatewayRoute:
    """An SMS gateway route (AamarSMS, DiniSoft): plain numbers only, typed errors turned into
    outcomes. Subclasses say how a message goes out and how its delivery is read."""

    name: str

    def reaches(self, to: str) -> bool:
        return international(to) is not None

    async def send(self, to: str, text: str, *, kind: str) -> SendOutcome:
        try:
            return _accepted(self.name, await self._submit(to, text, kind))
        except UpstreamError as exc:
            return gateway_outcome(self.name, exc, sms_parts(text))

    async def _submit(self, to: str, text: str, kind: str) -> SmsAccepted:
        raise NotImplementedError


class AamarSmsRoute(GatewayRoute):
    """AamarSMS: `/otp` for one-time codes, `/api` (bulk) for everything else."""

    name = AAMARSMS

    def __init__(self, client: AamarSmsClient) -> None:
        self.client = client

    async def _submit(self, to: str, text: str, kind: str) -> SmsAccepted:
        if kind == "otp":
            return await self.client.send_otp(to, text)
        return await self.client.send_bulk(to, text)

    async def delivery_status(self, message_id: str) -> DeliveryStatus:
        return await self.client.delivery_status(message_id)


class DiniSoftRoute(GatewayRoute):
    """DiniSoft `sendtext`; delivery is learnt by polling `getstatus`."""

    name = DINISOFT

    def __init__(self, client: DiniSoftClient) -> None:
        self.client = client

    async def _submit(self, to: str, text: str, kind: str) -> SmsAccepted:
        return await self.client.send_text(to, text)

    async def delivery_status(self, message_id: str) -> DeliveryStatus:
        return await self.client.get_status(message_id)
