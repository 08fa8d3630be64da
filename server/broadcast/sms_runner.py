"""SMS broadcasts: many recipients per BDApps `/sms/send`, each address's answer read apart.

How the rate limit counts: one token of the route's bucket (ALAP_SMS_RATE per second,
server/messaging/throttle.py: with Redis, one bucket shared by every process that sends SMS) per
*recipient*, not per request. BDApps' per-second limit is an application's transactions, and
every destination address becomes one SMS at the operator's SMSC; counting recipients can never
overshoot whichever way the gateway counts, while counting requests could overshoot it by the
batch size. Batching saves HTTP round trips, not quota: at the default 10/s a request carries
about 10 recipients, once a second.

Per request:
- S1000: each destination's own statusCode decides (S1000: sent, with its messageId for the
  delivery report; E1318/E1319/E1602/E1603/E1326: certainly not sent, tried again; anything
  else: failed). A destination missing from the answer: UNKNOWN;
- E1318: nothing was sent; the bucket brakes (halves its rate, holds) and the same recipients
  go again; E1319: nothing was sent; the broadcast is PARKED until Dhaka's next midnight;
- E1602/E1603/E1326, connection refused, HTTP 5xx: nothing was sent; again after a growing delay;
- timeout, cut connection, unreadable answer: every recipient of the request is UNKNOWN (never
  resent without --retry-unknown);
- any other refusal of the whole request (credentials...): STOPPED, nothing recorded.

Recipients that BDApps does not serve (route `auto`, the order of server/messaging/policy.py)
and the routes `aamarsms` / `dinisoft` go one by one through the SmsSender (failover, parking,
its own message log), a few at a time.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import jinja2
import structlog

from server.integrations.bdapps import BdappsGateway, SmsSendResult
from server.messaging import BDAPPS, SmsSender, next_dhaka_day
from server.msisdn import international
from server.render.environment import Renderer
from server.store.base import Store

from .recipients import TEL_ALL
from .runner import MAX_RATE_LIMIT_HOLD, STATUS_OF_SENT, BatchResult, BroadcastRunner, Halt, decode_entry
from .store import CANCELLED, PARKED, STOPPED, Spec, Status

log = structlog.get_logger("alap.broadcast")

RETRY_DELAY, MAX_RETRY_DELAY = 1.0, 60.0  # a gateway refusing for a passing reason
SENDER_CONCURRENCY = 8  # one-by-one sends in flight through the SmsSender


def _match_key(address: str) -> str:
    """The gateway writes an address back as "tel: 8801...", "tel: +880..." or "8801...": compare
    numbers as numbers, anything else (masked ids, tel:all) without whitespace or case."""
    compact = "".join(address.split())
    return international(compact) or compact.lower()


def compile_text(renderer: Renderer, text: str, lang: str) -> jinja2.Template:
    """The --text as a Jinja template with Alap's filters (taka, number, digits) in `lang`;
    an unknown column is an error, never an empty hole in a subscriber's SMS."""
    return renderer.envs[lang].from_string(text)


@dataclass
class SmsText:
    """A broadcast's --text, compiled at the start of each run in the broadcast's language (else
    the default) and filled in for each recipient."""

    renderer: Renderer
    default_language: str
    template: jinja2.Template | None = None
    lang: str = ""

    def prepare(self, spec: Spec) -> None:
        self.lang = spec.lang or self.default_language
        self.template = compile_text(self.renderer, spec.text or "", self.lang)

    def render(self, columns: dict[str, str], address: str) -> str:
        assert self.template is not None, "prepare() first"
        return self.template.render(**columns, lang=self.lang, msisdn=address[4:]).strip()


class SmsBroadcastRunner(BroadcastRunner):
    def __init__(self, bstore: Any, store: Store, gateway: BdappsGateway, sender: SmsSender, renderer: Renderer,
                 *, default_language: str = "bn", source_address: str | None = None, **options: Any) -> None:
        super().__init__(bstore, **options)
        self.store = store
        self.gateway = gateway
        self.sender = sender
        self.source_address = source_address
        self.text = SmsText(renderer, default_language)
        self.bucket = sender.bucket_for(BDAPPS)  # shared with the server's own SMS

    async def prepare(self, spec: Spec) -> None:
        self.text.prepare(spec)

    # -- one batch ---------------------------------------------------------------------------
    async def send_batch(self, spec: Spec, items: list[tuple[int, str]]) -> BatchResult:
        result = BatchResult()
        entries = [(seq, decode_entry(raw)) for seq, raw in items]
        profiles = await self.store.get_profiles([e.address for _, e in entries])
        bdapps: dict[str, list[tuple[int, str]]] = {}  # text -> [(seq, address)]
        one_by_one: list[tuple[int, str, str]] = []
        for (seq, entry), profile in zip(entries, profiles):
            if profile.opted_out:
                result.outcomes.append((seq, Status.OPTED_OUT.value))
                continue
            try:
                text = self.text.render(entry.columns, entry.address)
            except Exception as exc:  # a filter refusing this row's value: this recipient only
                log.warning("broadcast_text_failed", broadcast=self.name, seq=seq, error=type(exc).__name__)
                text = ""
            if not text:
                result.outcomes.append((seq, Status.FAILED.value))
                continue
            if self._first_route(spec, entry.address) == BDAPPS:
                bdapps.setdefault(text, []).append((seq, entry.address))
            else:
                one_by_one.append((seq, entry.address, text))
        begun = [s for group in bdapps.values() for s, _ in group] + [s for s, _, _ in one_by_one]
        if not begun:
            return result
        if not await self.begin(begun):
            result.halt = Halt(CANCELLED)
            return result
        for text, group in bdapps.items():
            await self._send_bdapps(group, text, result)
            if result.halt is not None:
                return result
        if one_by_one:
            await self._send_one_by_one(one_by_one, result)
        return result

    def _first_route(self, spec: Spec, address: str) -> str | None:
        if spec.route != "auto":
            return spec.route
        # A number from a FILE is a plain number to the policy (not an address BDApps gave us).
        routes = self.sender.policy.routes_for(address.removeprefix("tel:"), self.sender.routes)
        return routes[0].name if routes else BDAPPS

    async def send_to_all(self, spec: Spec) -> BatchResult:
        result = BatchResult()
        if not await self.begin([0]):
            result.halt = Halt(CANCELLED)
            return result
        await self._send_bdapps([(0, TEL_ALL)], self.text.render({}, "tel:"), result, tokens=1)
        return result

    # -- BDApps, batched --------------------------------------------------------------------
    async def _send_bdapps(self, group: list[tuple[int, str]], text: str, result: BatchResult,
                           *, tokens: int | None = None) -> None:
        pending = list(group)
        hold, delay = self.rate_limit_hold, RETRY_DELAY
        while pending:
            for _ in range(tokens or len(pending)):
                await self.bucket.acquire()
            await self.renew()  # the lease, after any wait for tokens
            answer = await self.gateway.send_sms([a for _, a in pending], text, source_address=self.source_address,
                                                 delivery_report=True)
            if answer.destinations and answer.outcome not in ("rate_limited", "daily_limit", "ambiguous"):
                pending, daily = self._per_address(pending, answer, result)
                if answer.ok:
                    await self.bucket.speed_up()
                if daily:  # left without a status: sent again when the broadcast resumes
                    result.halt = Halt(PARKED, "E1319: per-day limit reached", next_dhaka_day(self.clock()))
                    return
                if pending:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            if answer.ok:  # accepted without a destination list: the requestId is the message id
                for seq, _ in pending:
                    result.outcomes.append((seq, Status.SENT.value))
                    if len(pending) == 1 and answer.request_id:
                        result.reports.append((BDAPPS, answer.request_id, seq))
                return
            if answer.outcome == "rate_limited":
                result.slowed += 1
                log.warning("broadcast_rate_limited", broadcast=self.name, hold=hold)
                await self.bucket.slow_down(hold)
                hold = min(hold * 2, MAX_RATE_LIMIT_HOLD)
            elif answer.outcome == "daily_limit":
                until = next_dhaka_day(self.clock())
                result.halt = Halt(PARKED, f"{answer.status_code}: per-day limit reached", until)
                return
            elif answer.outcome == "retryable":
                log.warning("broadcast_gateway_retry", broadcast=self.name, code=answer.status_code, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
            elif answer.outcome == "ambiguous":
                log.warning("broadcast_outcome_unknown", broadcast=self.name, code=answer.status_code,
                            recipients=len(pending))
                result.outcomes.extend((seq, Status.UNKNOWN.value) for seq, _ in pending)
                return
            else:
                result.halt = Halt(STOPPED, f"BDApps refused the request: {answer.status_code} {answer.detail}"[:200])
                return

    @staticmethod
    def _per_address(pending: list[tuple[int, str]], answer: SmsSendResult,
                     result: BatchResult) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """Each destination's own answer. Returns (to send again now, refused for the per-day
        limit): both certainly not sent."""
        by_address = {}
        for dest in answer.destinations:
            by_address.setdefault(_match_key(dest.address), dest)
        # The list answers "each element in the Address list of the request", in its order: an
        # address spelt beyond recognition is matched by its position when the counts agree.
        by_position = len(answer.destinations) == len(pending)
        again, daily = [], []
        for i, (seq, address) in enumerate(pending):
            dest = by_address.get(_match_key(address)) or (answer.destinations[i] if by_position else None)
            if dest is None:
                result.outcomes.append((seq, Status.UNKNOWN.value))
            elif dest.ok:
                result.outcomes.append((seq, Status.SENT.value))
                if dest.message_id:
                    result.reports.append((BDAPPS, dest.message_id, seq))
            elif dest.status_code in ("E1318", "E1602", "E1603", "E1326"):
                again.append((seq, address))
            elif dest.status_code == "E1319":
                daily.append((seq, address))
            else:
                result.outcomes.append((seq, Status.FAILED.value))
        return again, daily

    # -- other routes, one by one through the SmsSender --------------------------------------
    async def _send_one_by_one(self, items: list[tuple[int, str, str]], result: BatchResult) -> None:
        limit = asyncio.Semaphore(SENDER_CONCURRENCY)

        async def one(seq: int, address: str, text: str) -> None:
            async with limit:
                sent = await self.sender.send(address[4:] if address.startswith("tel:") else address, text,
                                              kind="notice")
            result.outcomes.append((seq, STATUS_OF_SENT.get(sent.status.value, Status.UNKNOWN).value))
            if sent.route:
                for message_id in sent.message_ids:
                    result.reports.append((sent.route, message_id, seq))

        await asyncio.gather(*(one(*item) for item in items))
