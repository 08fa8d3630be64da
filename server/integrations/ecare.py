"""eCare Technology mobile-recharge client (seed 001).

Wire format, and the decisions taken where the seed is ambiguous:

- One URL (`recharge_api_thirdparty.php`), one GET per call, everything in the query string:
  `access_id`, `access_pass`, `service` (MRC / MRCSTATUS / BLCK / OFFERPACK) and the service's
  fields. The seed shows only GET URLs, so we send exactly that.
- The seed documents answers as tables of field -> value, not bodies. We read them as one JSON
  object with those field names (`STATUS`, `RECHARGE_STATUS`, `MESSAGE`, ...), accepting any
  key case and a one-element list around the object.
- The general error table pairs `STATUS OK` with `MESSAGE INVALID SERVICE`, `INVALID` with
  "Login Failed, Invalid Credential", `FAILED` with "Login Failed" and `MAINTENANCE` with the
  maintenance text; we map by those pairs (a "login failed" text is an auth error whatever the
  STATUS).
- MRC `RECEIVED` only means "submitted": the final state comes from MRCSTATUS
  (PENDING/PROCESSING/SUCCESS/FAILED, returned as a result, not raised). MRC `REJECT` carries
  "Sorry! Invalid Credentials." in the seed; it is a definitive refusal (ECareRejected).
- Operator codes are the third digit of the number's prefix: Grameenphone 7 (017) / 3 (013),
  Banglalink 9 (019) / 4 (014), Robi 8 (018), Airtel 6 (016), Teletalk 5 (015). Because of
  number portability the caller passes the operator; `Operator.for_msisdn` is only a guess.
- Numbers are sent in the seed's local 11-digit form `01XXXXXXXXX`; amounts as whole taka.
- OFFERPACK has no documented answer: we take the first list in the object (or a bare list),
  each item with case-insensitive fields among OFFER_ID/ID, OPERATOR, NUMBER_TYPE,
  TITLE/NAME, AMOUNT/PRICE, VALIDITY, DETAILS/DESCRIPTION.

Money: `recharge` is never retried here. A timeout (UpstreamTimeout), 5xx or malformed answer
leaves the outcome unknown; ask `recharge_status(refid)` or resubmit with the SAME refid
(DUPLICATE then says the first one landed). Reads retry once on connect errors and 5xx.

Credentials travel in the query string: base.send logs only the path, and a filter on the
`httpx` logger strips query strings holding `access_pass` from its "HTTP Request" line.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum, IntEnum
from typing import Any, Awaitable, Callable, TypeVar

import httpx

from server.integrations.base import (
    Timeouts,
    UpstreamAuthError,
    UpstreamConnectError,
    UpstreamMalformed,
    UpstreamRejected,
    UpstreamUnavailable,
    json_body,
    make_http_client,
    raise_for_http_status,
    send,
)
from server.metrics import register_error_codes

UPSTREAM = "ecare"
ECARE_DEFAULT_URL = "http://118.179.129.98/myportal/api/rechargeapi/recharge_api_thirdparty.php"

T = TypeVar("T")


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
        return cls(int(local_msisdn(msisdn)[2]))


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


# --- errors --------------------------------------------------------------------------------


class ECareAuthError(UpstreamAuthError):
    """Credentials refused ("Login Failed"). Never retryable."""


class ECareInvalid(UpstreamRejected):
    """eCare did not understand the call (INVALID SERVICE). A bug of ours: not retryable."""


class ECareMaintenance(UpstreamUnavailable):
    """"Server Maintenance Mode Running": nothing was done, try again later."""


class ECareRejected(UpstreamRejected):
    """A definitive refusal of this recharge (REJECT, FAILED): no money moved, not retryable."""


class ECareLowBalance(ECareRejected):
    """Our eCare wallet cannot cover the recharge. Not retryable until the wallet is topped up."""


class ECareDuplicate(UpstreamRejected):
    """The refid was already used. This submission was refused, but the ORIGINAL one may have
    been applied: ask `recharge_status(refid)`, never resubmit under a new refid blindly."""


class ECareInvalidRef(UpstreamRejected):
    """MRCSTATUS knows no recharge under this refid: it never reached eCare's books."""


# --- input normalisation -------------------------------------------------------------------

_MSISDN = re.compile(r"^(?:tel:)?\s*(?:\+?88)?(01[3-9]\d{8})$")


def local_msisdn(msisdn: str) -> str:
    """`01XXXXXXXXX` from 01..., 8801..., +8801... or tel:8801...; ValueError otherwise."""
    match = _MSISDN.match(msisdn.strip())
    if not match:
        raise ValueError(f"not a Bangladeshi mobile number: {msisdn!r}")
    return match.group(1)


def _whole_taka(amount: int | Decimal | str) -> str:
    if isinstance(amount, float) or isinstance(amount, bool):
        raise TypeError("amount must be int, Decimal or str, not float")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"amount is not a number: {amount!r}") from None
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        raise ValueError(f"recharge amount must be a positive whole number of taka: {amount!r}")
    return str(int(value))


# --- answer parsing ------------------------------------------------------------------------


def _fields(body: Any) -> dict[str, Any]:
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise UpstreamMalformed(UPSTREAM, "malformed", "answer is not a JSON object", body=body)
    return {str(k).strip().upper(): v for k, v in body.items()}


def _text(fields: dict[str, Any], *names: str) -> str:
    for name in names:
        value = fields.get(name)
        if value is not None and str(value).strip() != "":
            return str(value).strip()
    return ""


def _decimal(raw: Any) -> Decimal | None:
    if raw is None or str(raw).strip() == "":
        return None
    try:
        return Decimal(str(raw).replace(",", "").strip())  # "3,500.00"
    except InvalidOperation:
        return None


# Every code the errors below carry (the answer's STATUS / RECHARGE_STATUS words), for metrics.
register_error_codes(["INVALID_SERVICE", "MAINTENANCE", "INVALID", "LOGIN_FAILED", "FAILED", "REJECT", "DUPLICATE",
                      "LOWBALANCE", "INVALIDREF"])


def _raise_general(fields: dict[str, Any], body: Any) -> None:
    """The general error table; returns if the answer is none of those."""
    status = _text(fields, "STATUS").upper()
    message = _text(fields, "MESSAGE")
    lowered = message.lower()
    if lowered == "invalid service":
        raise ECareInvalid(UPSTREAM, "INVALID_SERVICE", message, body=body)
    if status == "MAINTENANCE":
        raise ECareMaintenance(UPSTREAM, "MAINTENANCE", message, body=body)
    if status == "INVALID" or "login failed" in lowered or "invalid credential" in lowered:
        raise ECareAuthError(UPSTREAM, status or "LOGIN_FAILED", message, body=body)
    if status in ("FAILED", "REJECT"):
        raise ECareRejected(UPSTREAM, status, message, body=body)


def _malformed(what: str, body: Any) -> UpstreamMalformed:
    return UpstreamMalformed(UPSTREAM, "malformed", what, body=body)


def _parse_submission(body: Any, refid: str) -> RechargeSubmission:
    fields = _fields(body)
    recharge_status = _text(fields, "RECHARGE_STATUS").upper()
    message = _text(fields, "MESSAGE")
    if recharge_status == "RECEIVED":
        return RechargeSubmission(
            refid=refid, trxid=_text(fields, "TRXID") or None, operator=_text(fields, "OPERATOR"),
            number=_text(fields, "NUMBER"), amount=_decimal(fields.get("AMOUNT")), message=message)
    if recharge_status == "DUPLICATE":
        raise ECareDuplicate(UPSTREAM, "DUPLICATE", message, body=body)
    if recharge_status == "LOWBALANCE":
        raise ECareLowBalance(UPSTREAM, "LOWBALANCE", message, body=body)
    if recharge_status in ("FAILED", "REJECT"):
        raise ECareRejected(UPSTREAM, recharge_status, message, body=body)
    _raise_general(fields, body)
    # Unknown answer to a money call: outcome unknown, the caller asks MRCSTATUS.
    raise _malformed(f"unknown MRC answer {recharge_status or _text(fields, 'STATUS')!r}", body)


def _parse_status(body: Any, refid: str) -> RechargeStatus:
    fields = _fields(body)
    recharge_status = _text(fields, "RECHARGE_STATUS").upper()
    if recharge_status in ("PENDING", "PROCESSING", "SUCCESS", "FAILED"):
        return RechargeStatus(refid=refid, state=RechargeState(recharge_status),
                              trxid=_text(fields, "RECHARGE_TRXID", "TRXID") or None,
                              message=_text(fields, "MESSAGE"))
    if recharge_status == "INVALIDREF":
        raise ECareInvalidRef(UPSTREAM, "INVALIDREF", _text(fields, "MESSAGE"), body=body)
    _raise_general(fields, body)
    raise _malformed(f"unknown MRCSTATUS answer {recharge_status!r}", body)


def _parse_balance(body: Any) -> WalletBalance:
    fields = _fields(body)
    main = _decimal(fields.get("MAIN_BALANCE"))
    if main is None:
        _raise_general(fields, body)
        raise _malformed("BLCK answer without MAIN_BALANCE", body)
    return WalletBalance(main_balance=main, stock_balance=_decimal(fields.get("STOCK_BALANCE")),
                         commission_type=_text(fields, "COMMISSION_TYPE"),
                         commission_rate=_decimal(fields.get("COMMISSION_RATE")),
                         message=_text(fields, "MESSAGE"))


def _enum_or_none(enum: type[IntEnum], raw: Any) -> Any:
    try:
        return enum(int(str(raw).strip()))
    except (TypeError, ValueError):
        return None


def _parse_offer(item: Any, body: Any) -> OfferPack:
    if not isinstance(item, dict):
        raise _malformed("offer pack is not an object", body)
    fields = {str(k).strip().upper(): v for k, v in item.items()}
    price = _decimal(fields.get("AMOUNT", fields.get("PRICE")))
    if price is None:
        raise _malformed("offer pack without a price", body)
    return OfferPack(
        offer_id=_text(fields, "OFFER_ID", "ID", "PACK_ID", "OFFERID", "CODE"),
        operator=_enum_or_none(Operator, fields.get("OPERATOR", fields.get("OPERATOR_ID"))),
        number_type=_enum_or_none(NumberType, fields.get("NUMBER_TYPE")),
        title=_text(fields, "TITLE", "NAME", "OFFER_NAME", "PACK_NAME"),
        price=price,
        validity=_text(fields, "VALIDITY"),
        details=_text(fields, "DETAILS", "DESCRIPTION", "OFFER_DETAILS"))


def _parse_offers(body: Any) -> tuple[OfferPack, ...]:
    if isinstance(body, list):
        items = body
    else:
        fields = _fields(body)
        items = next((v for v in fields.values() if isinstance(v, list)), None)
        if items is None:
            _raise_general(fields, body)
            if _text(fields, "STATUS").upper() != "OK":
                raise _malformed("OFFERPACK answer without a list", body)
            items = []  # OK with no list: no offers today
    return tuple(_parse_offer(item, body) for item in items)


# --- secret-safe logging -------------------------------------------------------------------


class _RedactCredentials(logging.Filter):
    """httpx logs every request URL at INFO; ours carry access_pass in the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def _redact(arg: Any) -> Any:
    text = str(arg) if isinstance(arg, (httpx.URL, str)) else None
    if text is not None and "access_pass" in text:
        return text.split("?", 1)[0] + "?<redacted>"
    return arg


def _install_log_filter() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactCredentials) for f in logger.filters):
        logger.addFilter(_RedactCredentials())


_install_log_filter()


# --- client --------------------------------------------------------------------------------


async def _read_with_retry(call: Callable[[], Awaitable[T]], attempts: int = 2) -> T:
    """Idempotent reads only: a refused connection or a 5xx is worth one more try."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except (UpstreamConnectError, UpstreamUnavailable):
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


class ECareClient:
    """eCare recharge API. One instance per process; close with `aclose()`."""

    def __init__(self, url: str, access_id: str, access_pass: str, *,
                 timeouts: Timeouts | None = None, http: httpx.AsyncClient | None = None) -> None:
        self._url = url
        self._credentials = {"access_id": access_id, "access_pass": access_pass}
        self._owns_http = http is None
        self._http = http or make_http_client(timeouts=timeouts)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "ECareClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _get(self, service: str, **params: str) -> Any:
        query = {**self._credentials, "service": service, **params}
        response = await send(self._http, UPSTREAM, "GET", self._url, params=query)
        raise_for_http_status(response, UPSTREAM)
        return json_body(response, UPSTREAM)

    async def recharge(self, msisdn: str, amount: int | Decimal | str, operator: Operator,
                       number_type: NumberType, refid: str) -> RechargeSubmission:
        """Submit a recharge (MRC) under the caller's refid, written to the ledger beforehand.

        Never retried here. RECEIVED is not success: poll `recharge_status(refid)`."""
        if not refid or not refid.strip():
            raise ValueError("refid is required (the caller's idempotency key)")
        body = await self._get(
            "MRC", operator=str(int(operator)), number_type=str(int(number_type)),
            number=local_msisdn(msisdn), amount=_whole_taka(amount), refid=refid)
        return _parse_submission(body, refid)

    async def recharge_status(self, refid: str) -> RechargeStatus:
        """MRCSTATUS: PENDING / PROCESSING / SUCCESS / FAILED; ECareInvalidRef if unknown."""
        body = await _read_with_retry(lambda: self._get("MRCSTATUS", refid=refid))
        return _parse_status(body, refid)

    async def balance(self) -> WalletBalance:
        """BLCK: our reseller wallet."""
        return _parse_balance(await _read_with_retry(lambda: self._get("BLCK")))

    async def offer_packs(self) -> tuple[OfferPack, ...]:
        """OFFERPACK: drive packs on sale."""
        return _parse_offers(await _read_with_retry(lambda: self._get("OFFERPACK")))
