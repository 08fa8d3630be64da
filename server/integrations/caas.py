"""BDApps CAAS client: balance query, payment instruments, direct debit (docs/upstreams.md).

Wire format, and the decisions taken where the API document is ambiguous:

- POST JSON to `{base_url}/caas/balance/query`, `/caas/list/pi`, `/caas/direct/debit` with
  `applicationId` and `password` in the body (never logged: base.send logs only the path).
- `subscriberId` is sent byte for byte as given: it may be a masked id (`tel:B%3C4pbgsm...`).
- `amount` is a string with at most two decimals ("5", "12.50"); more decimals is a ValueError
  (we never round money silently). `currency` is always "BDT" on a debit.
- Errors come back as HTTP 200 with `statusCode` != "S1000". Appendix A: E1318, E1319, E1326,
  E1602, E1603 are retryable, the rest are not. A JSON body with a `statusCode` is mapped by
  that code even on a non-2xx status; other non-2xx answers map by HTTP status.
- E1308 ("permanent charging error", e.g. insufficient balance) -> CaasChargeDeclined;
  E1326 ("Insufficient balance", listed retryable) -> CaasInsufficientBalance, retryable.
- E1337 (duplicate request) -> CaasDuplicate: the gateway refused THIS request; whether an
  earlier one with the same externalTrxId was charged is not known from it.

Money: `direct_debit` is never retried here. UpstreamTimeout / 5xx / malformed mean the outcome
is unknown; the caller retries with the SAME externalTrxId. Reads retry once on connect errors
and 5xx.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from server.integrations.bdapps_codes import SUCCESS, is_retryable
from server.money import parse_taka, taka_text

from server.integrations.base import (
    Timeouts,
    UpstreamAuthError,
    UpstreamClient,
    UpstreamError,
    UpstreamMalformed,
    UpstreamRejected,
    UpstreamUnavailable,
    is_transient,
    json_body,
    raise_for_http_status,
    read_with_retry,
    send,
)

UPSTREAM = "caas"

@dataclass(frozen=True)
class CaasBalance:
    subscriber_id: str
    chargeable_balance: Decimal  # taka
    account_type: str  # e.g. PREPAID / POSTPAID
    account_status: str  # as given ("0" in the API document's sample)
    status_detail: str


@dataclass(frozen=True)
class PaymentInstrument:
    name: str
    type: str  # sync / async


@dataclass(frozen=True)
class DebitResult:
    external_trx_id: str
    internal_trx_id: str
    reference_id: str | None
    timestamp: str | None  # ISO-8601 as sent by the gateway
    amount: Decimal
    subscriber_id: str
    status_detail: str


# --- errors --------------------------------------------------------------------------------


class CaasAuthError(UpstreamAuthError):
    """E1313 (bad applicationId/password) or E1303 (IP not provisioned)."""


class CaasRejected(UpstreamRejected):
    """Any other BDApps error code; `retryable` follows Appendix A."""


class CaasInvalidRequest(CaasRejected):
    """E1312 / E1325 / E1317: a field we sent is wrong. A bug or bad data, not retryable."""


class CaasChargeDeclined(CaasRejected):
    """E1308: permanent charging error (e.g. insufficient balance). Nothing was charged."""


class CaasInsufficientBalance(CaasRejected):
    """E1326: insufficient balance, listed retryable (the subscriber may top up)."""

    retryable = True


class CaasDuplicate(CaasRejected):
    """E1337: duplicate request. Says nothing certain about the earlier request's outcome."""


class CaasTemporaryError(UpstreamUnavailable):
    """E1318 / E1319 (throttled), E1602 / E1603 (temporary failure): retry later."""


_CODE_CLASSES: dict[str, type[UpstreamError]] = {
    "E1313": CaasAuthError, "E1303": CaasAuthError,
    "E1312": CaasInvalidRequest, "E1325": CaasInvalidRequest, "E1317": CaasInvalidRequest,
    "E1308": CaasChargeDeclined, "E1326": CaasInsufficientBalance, "E1337": CaasDuplicate,
    "E1318": CaasTemporaryError, "E1319": CaasTemporaryError,
    "E1602": CaasTemporaryError, "E1603": CaasTemporaryError,
}


def error_for(code: str, detail: str, body: Any = None, http_status: int | None = None) -> UpstreamError:
    """The typed error for a BDApps status code other than S1000."""
    cls = _CODE_CLASSES.get(code, CaasRejected)
    return cls(UPSTREAM, code, detail, retryable=is_retryable(code), body=body,
               http_status=http_status)


def format_amount(amount: Decimal | int | str) -> str:
    """Taka as the API document's string: "5", "12.50". Rejects floats, <= 0 and more than 2 decimals."""
    return taka_text(parse_taka(amount))


def _decimal(raw: Any, body: Any) -> Decimal:
    try:
        return Decimal(str(raw).replace(",", "").strip())
    except InvalidOperation:
        raise UpstreamMalformed(UPSTREAM, "malformed", f"not an amount: {raw!r}", body=body) from None


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _read_again(exc: BaseException) -> bool:
    """A refused connection or a 5xx is worth one more try; BDApps' own throttling and
    temporary codes are not (asking again at once only meets the same limit)."""
    return is_transient(exc) and not isinstance(exc, CaasTemporaryError)


class CaasClient(UpstreamClient):
    """BDApps charging-as-a-service. One instance per process; close with `aclose()`."""

    def __init__(self, base_url: str, app_id: str, password: str, *,
                 payment_instrument: str = "Mobile Account", timeouts: Timeouts | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(timeouts=timeouts, http=http)
        self._base_url = base_url.rstrip("/")
        self._auth = {"applicationId": app_id, "password": password}
        self._payment_instrument = payment_instrument

    async def _post(self, path: str, fields: dict[str, str]) -> dict[str, Any]:
        """One call; returns the body of an S1000 answer, raises a typed error otherwise."""
        response = await send(self._http, UPSTREAM, "POST", self._base_url + path,
                              json={**self._auth, **fields})
        body: Any = None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not (isinstance(body, dict) and body.get("statusCode")):
                raise_for_http_status(response, UPSTREAM)
        if body is None:
            body = json_body(response, UPSTREAM)
        if not isinstance(body, dict) or not _text(body, "statusCode"):
            raise UpstreamMalformed(UPSTREAM, "malformed", "answer without statusCode", body=body,
                                    http_status=response.status_code)
        code = str(body["statusCode"]).strip()
        if code != SUCCESS:
            raise error_for(code, _text(body, "statusDetail") or "", body, response.status_code)
        return body

    async def query_balance(self, subscriber_id: str) -> CaasBalance:
        fields = {"subscriberId": subscriber_id, "paymentInstrumentName": self._payment_instrument}
        body = await read_with_retry(lambda: self._post("/caas/balance/query", fields), retry_if=_read_again)
        if body.get("chargeableBalance") is None:
            raise UpstreamMalformed(UPSTREAM, "malformed", "no chargeableBalance", body=body)
        return CaasBalance(subscriber_id=subscriber_id,
                           chargeable_balance=_decimal(body["chargeableBalance"], body),
                           account_type=_text(body, "accountType") or "",
                           account_status=_text(body, "accountStatus") or "",
                           status_detail=_text(body, "statusDetail") or "")

    async def payment_instruments(self, subscriber_id: str, type: str = "all") -> tuple[PaymentInstrument, ...]:
        fields = {"subscriberId": subscriber_id, "type": type}
        body = await read_with_retry(lambda: self._post("/caas/list/pi", fields), retry_if=_read_again)
        items = body.get("paymentInstrumentList") or []
        if not isinstance(items, list):
            raise UpstreamMalformed(UPSTREAM, "malformed", "paymentInstrumentList is not a list", body=body)
        return tuple(PaymentInstrument(name=str(i.get("name", "")), type=str(i.get("type", "")))
                     for i in items if isinstance(i, dict))

    async def direct_debit(self, subscriber_id: str, amount: Decimal, external_trx_id: str) -> DebitResult:
        """Charge the subscriber under the caller's externalTrxId (written to the ledger first).

        Never retried here: on UpstreamTimeout the caller retries with the SAME id."""
        if not external_trx_id or len(external_trx_id) > 32:
            raise ValueError("external_trx_id must be 1-32 characters (CAAS: String(32))")
        wire_amount = format_amount(amount)
        body = await self._post("/caas/direct/debit", {
            "externalTrxId": external_trx_id, "amount": wire_amount, "currency": "BDT",
            "subscriberId": subscriber_id, "paymentInstrumentName": self._payment_instrument})
        echoed = _text(body, "externalTrxId")
        internal = _text(body, "internalTrxId")
        if echoed not in (None, external_trx_id) or internal is None:
            # Charged or not, we cannot match this answer to our ledger row: ask again, same id.
            raise UpstreamMalformed(UPSTREAM, "malformed", "debit answer does not match the request",
                                    body=body)
        return DebitResult(external_trx_id=external_trx_id, internal_trx_id=internal,
                           reference_id=_text(body, "referenceId"), timestamp=_text(body, "timeStamp"),
                           amount=Decimal(wire_amount), subscriber_id=subscriber_id,
                           status_detail=_text(body, "statusDetail") or "")
