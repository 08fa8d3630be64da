"""eCare Technology mobile-recharge client (docs/upstreams.md).

Wire format, and the decisions taken where the API document is ambiguous:

- One URL (`recharge_api_thirdparty.php`), one GET per call, everything in the query string:
  `access_id`, `access_pass`, `service` (MRC / MRCSTATUS / BLCK / OFFERPACK) and the service's
  fields. The API document shows only GET URLs, so we send exactly that.
- The API document gives answers as tables of field -> value, not bodies. We read them as one JSON
  object with those field names (`STATUS`, `RECHARGE_STATUS`, `MESSAGE`, ...), accepting any
  key case and a one-element list around the object.
- The general error table pairs `STATUS OK` with `MESSAGE INVALID SERVICE`, `INVALID` with
  "Login Failed, Invalid Credential", `FAILED` with "Login Failed" and `MAINTENANCE` with the
  maintenance text; we map by those pairs (a "login failed" text is an auth error whatever the
  STATUS).
- MRC `RECEIVED` only means "submitted": the final state comes from MRCSTATUS
  (PENDING/PROCESSING/SUCCESS/FAILED, returned as a result, not raised). MRC `REJECT` carries
  "Sorry! Invalid Credentials." in the API document; it is a definitive refusal (ECareRejected).
- Operator codes are the third digit of the number's prefix: Grameenphone 7 (017) / 3 (013),
  Banglalink 9 (019) / 4 (014), Robi 8 (018), Airtel 6 (016), Teletalk 5 (015). Because of
  number portability the caller passes the operator; `Operator.for_msisdn` is only a guess.
- Numbers are sent in the API document's local 11-digit form `01XXXXXXXXX`; amounts as whole taka.
- OFFERPACK has no documented answer: we take the first list in the object (or a bare list),
  each item with case-insensitive fields among OFFER_ID/ID, OPERATOR, NUMBER_TYPE,
  TITLE/NAME, AMOUNT/PRICE, VALIDITY, DETAILS/DESCRIPTION.

Money: `recharge` is never retried here. A timeout (UpstreamTimeout), 5xx or malformed answer
leaves the outcome unknown; ask `recharge_status(refid)` or resubmit with the SAME refid
(DUPLICATE then says the first one landed). Reads retry once on connect errors and 5xx.

Credentials travel in the query string: base.send logs only the path, and
base.hide_query_in_httpx_logs strips the query from httpx's own "HTTP Request" line.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from server.integrations.base import (
    Timeouts, UpstreamClient, hide_query_in_httpx_logs, json_body, raise_for_http_status, read_with_retry,
    send,
)
from server.money import parse_taka, taka_text
from server.msisdn import require_local

from .answers import parse_balance, parse_offers, parse_status, parse_submission
from .errors import UPSTREAM
from .models import NumberType, OfferPack, Operator, RechargeStatus, RechargeSubmission, WalletBalance

ECARE_DEFAULT_URL = "http://118.179.129.98/myportal/api/rechargeapi/recharge_api_thirdparty.php"


# httpx's own request log would show access_pass: cut the query off (base.py).
hide_query_in_httpx_logs()


# --- client --------------------------------------------------------------------------------


class ECareClient(UpstreamClient):
    """eCare recharge API. One instance per process; close with `aclose()`.
    Reads (MRCSTATUS, BLCK, OFFERPACK) retry once on connect errors and 5xx (base.read_with_retry)."""

    def __init__(self, url: str, access_id: str, access_pass: str, *,
                 timeouts: Timeouts | None = None, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(timeouts=timeouts, http=http)
        self._url = url
        self._credentials = {"access_id": access_id, "access_pass": access_pass}

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
            number=require_local(msisdn), amount=taka_text(parse_taka(amount, whole=True)), refid=refid)
        return parse_submission(body, refid)

    async def recharge_status(self, refid: str) -> RechargeStatus:
        """MRCSTATUS: PENDING / PROCESSING / SUCCESS / FAILED; ECareInvalidRef if unknown."""
        body = await read_with_retry(lambda: self._get("MRCSTATUS", refid=refid))
        return parse_status(body, refid)

    async def balance(self) -> WalletBalance:
        """BLCK: our reseller wallet."""
        return parse_balance(await read_with_retry(lambda: self._get("BLCK")))

    async def offer_packs(self) -> tuple[OfferPack, ...]:
        """OFFERPACK: drive packs on sale."""
        return parse_offers(await read_with_retry(lambda: self._get("OFFERPACK")))
