"""Reading eCare's answers: one JSON object (any key case, maybe inside a one-element list),
mapped to the typed results of models.py or the errors of errors.py by the rules in
client.py's docstring."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from server.integrations.base import UpstreamMalformed

from .errors import (
    UPSTREAM, ECareAuthError, ECareDuplicate, ECareInvalid, ECareInvalidRef, ECareLowBalance, ECareMaintenance,
    ECareRejected,
)
from .models import NumberType, OfferPack, Operator, RechargeState, RechargeStatus, RechargeSubmission, WalletBalance


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


def parse_submission(body: Any, refid: str) -> RechargeSubmission:
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


def parse_status(body: Any, refid: str) -> RechargeStatus:
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


def parse_balance(body: Any) -> WalletBalance:
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


def parse_offers(body: Any) -> tuple[OfferPack, ...]:
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
