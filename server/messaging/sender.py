"""`SmsSender`: the one way Alap sends an SMS.

    sent = await sender.send("tel:8801812345678", text, kind="notice")

For one message it:

1. honours opt-out: a subscriber whose profile says `opted_out` gets nothing but replies to
   their own request (`kind="reply"` or `reply_to_request=True`);
2. asks the `RoutingPolicy` for the routes that can reach the recipient, best first;
3. tries them in turn, each behind its own token bucket (`rate` per second):
   - accepted -> logged ACCEPTED with the provider's message id(s) and part count; done;
   - no clear answer (timeout, unreadable answer) -> logged UNKNOWN, never sent again;
   - BDApps E1318 (per-second limit) -> the route's bucket brakes, the same route is retried
     after a growing delay (`rate_limit_retries` times), then treated like a passing failure;
   - BDApps E1319 (per-day limit) -> the route is paused until the next day (Dhaka time) and
     the next route is tried;
   - a passing failure that certainly sent nothing (connection refused, 5xx, E1602/E1603/E1326,
     gateway out of balance) -> the next route;
   - anything else (credentials, invalid number...) -> logged FAILED; no other route is tried;
4. when every route was paused or failed for a passing reason, parks the message in the store
   with a not-before time (the pause's end, or a growing retry delay); `flush_parked()` sends
   due ones later. A message is never dropped: it ends ACCEPTED, UNKNOWN, FAILED (with its
   code) or OPTED_OUT, and a parked one is given up (FAILED "expired") only after `max_age`.

Every outcome is in the `MessageLog`; delivery reports update it (`delivery_report()`), and
`poll_dinisoft()` asks DiniSoft about the messages it still has pending.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import structlog

from server.integrations.base import UpstreamError, UpstreamRejected
from server.integrations.sms_parts import sms_parts
from server.msisdn import international, subscriber_key
from server.store.messages import MessageLog, MessageRecord, MessageStatus, normalize_status

from .policy import DEFAULT_ROUTES, RoutingPolicy
from .routes import DINISOFT, KINDS, PollableRoute, SendOutcome, SmsRoute
from .throttle import Bucket, TokenBucket

if TYPE_CHECKING:
    from server.store.base import Store

log = structlog.get_logger("alap.messaging")

DHAKA_UTC_OFFSET = 6 * 3600  # Bangladesh has no daylight saving time


def next_dhaka_day(now: float, margin: float = 60.0) -> float:
    """The next midnight in Dhaka (plus a minute), when BDApps' per-day counters reset."""
    local = now + DHAKA_UTC_OFFSET
    return (local // 86400 + 1) * 86400 - DHAKA_UTC_OFFSET + margin


@dataclass(frozen=True)
class SentMessage:
    """What became of one `send()` (or one parked message in `flush_parked()`).

    status: ACCEPTED (a provider took it), PARKED (held until `not_before`), UNKNOWN (a route
    gave no clear answer: it may have gone out; it is not sent again), FAILED (`code` says why),
    OPTED_OUT (not sent, not stored).
    """

    id: str
    to: str
    kind: str
    status: MessageStatus
    parts: int
    route: str | None = None
    message_ids: tuple[str, ...] = ()
    code: str | None = None
    detail: str | None = None
    not_before: float | None = None
    outcomes: tuple[SendOutcome, ...] = field(default=(), repr=False)

    @property
    def accepted(self) -> bool:
        return self.status is MessageStatus.ACCEPTED

    @property
    def parked(self) -> bool:
        return self.status is MessageStatus.PARKED

    @property
    def message_id(self) -> str | None:
        return self.message_ids[0] if self.message_ids else None


@dataclass(frozen=True)
class PollReport:
    checked: int = 0  # messages asked about
    updated: int = 0  # whose status changed to a final one (or UNKNOWN)
    errors: int = 0  # queries that failed for a passing reason (asked again next time)


@dataclass(eq=False)
class SmsSender:
    """Sends each SMS on the first route the policy allows that takes it, and parks it when every
    route failed for a passing reason (flushed again later)."""

    # The available routes (any subset of bdapps, aamarsms, dinisoft): given as a list, kept by name.
    routes: dict[str, SmsRoute] | Iterable[SmsRoute]
    log: MessageLog  # where every message is recorded (server/store/messages.py)
    store: Store | None = None  # subscriber profiles (opt-out); None = nobody is opted out
    _: KW_ONLY
    policy: RoutingPolicy | None = None  # the route order rule (None: bdapps, aamarsms, dinisoft)
    # Sends per second per route (0: unlimited) and how many may be saved up.
    rate: float = 10.0
    burst: float = 1.0
    # After E1318 retry the same route this many times, waiting backoff, 2x backoff, 4x backoff... s.
    rate_limit_retries: int = 3
    rate_limit_backoff: float = 1.0
    # When every route failed for a passing reason, park for retry_delay, doubling per attempt up
    # to max_retry_delay; a parked message older than max_age is given up (FAILED "expired").
    retry_delay: float = 60.0
    max_retry_delay: float = 3600.0
    max_age: float = 3 * 86400
    flush_lease: float = 300.0  # a flushed message is not handed to another flusher for this long
    clock: Callable[[], float] = time.time  # wall-clock seconds (not-before times, timestamps); tests move it
    daily_reset: Callable[[float], float] = next_dhaka_day  # when a route at its per-day limit may be tried again
    owned: Sequence[Any] = ()  # clients closed by aclose() (the factory's gateway clients)
    # (route, rate, burst) -> its bucket; None: one per process (build_sms_sender shares them
    # through Redis: server/messaging/throttle.py).
    bucket_factory: Callable[[str, float, float], Bucket] | None = None
    buckets: dict[str, Bucket] = field(init=False)  # route -> its bucket
    paused_until: dict[str, float] = field(init=False, default_factory=dict)  # route -> wall-clock time (per-day limit)

    def __post_init__(self) -> None:
        items = self.routes.values() if isinstance(self.routes, Mapping) else self.routes
        self.routes = {r.name: r for r in items}
        self.policy = self.policy or RoutingPolicy([n for n in DEFAULT_ROUTES])
        self.bucket_factory = self.bucket_factory or (lambda _route, rate, burst: TokenBucket(rate, burst))
        self.buckets = {name: self.bucket_factory(name, self.rate, self.burst) for name in self.routes}

    def bucket_for(self, route: str) -> Bucket:
        """The route's bucket: shared by every process through Redis when there is one
        (server/messaging/throttle.py), so a broadcast and the server's own SMS share the limit."""
        bucket = self.buckets.get(route)
        return bucket if bucket is not None else self.bucket_factory(route, self.rate, self.burst)

    async def aclose(self) -> None:
        for client in self.owned:
            await client.aclose()

    # -- sending ---------------------------------------------------------------------------
    async def send(self, to: str, text: str, *, kind: str = "notice", reply_to_request: bool = False) -> SentMessage:
        """Send one SMS to `to` (a BDApps address as given, masked ids included, or a plain
        Bangladeshi number). Never raises for a provider failure; raises ValueError for an
        empty text or unknown kind, StoreUnavailable when the opt-out check cannot be made."""
        if kind not in KINDS:
            raise ValueError(f"unknown SMS kind {kind!r} (one of {', '.join(KINDS)})")
        if not text:
            raise ValueError("empty SMS text")
        now = self.clock()
        record = MessageRecord(id=uuid.uuid4().hex, to=to, kind=kind, status=MessageStatus.ACCEPTED,
                               created_at=now, updated_at=now, parts=sms_parts(text),
                               reply_to_request=reply_to_request)
        if await self._opted_out(record):
            log.info("sms_opted_out", id=record.id, kind=kind)
            return self._result(record, MessageStatus.OPTED_OUT)
        return await self._deliver(record, text)

    async def _opted_out(self, record: MessageRecord) -> bool:
        if self.store is None or record.kind == "reply" or record.reply_to_request:
            return False
        keys = {subscriber_key(record.to)}
        number = international(record.to)
        if number is not None:  # a profile is keyed by the BDApps address "tel:880..."
            keys.add("tel:" + number)
        for key in sorted(keys):
            if (await self.store.get_profile(key)).opted_out:
                return True
        return False

    async def _deliver(self, record: MessageRecord, text: str) -> SentMessage:
        routes = self.policy.routes_for(record.to, self.routes)
        outcomes: list[SendOutcome] = []
        if not routes:
            return await self._finish(record, MessageStatus.FAILED, outcomes, code="unreachable",
                                      detail="no configured route can reach this address")
        paused_until: float | None = None
        for route in routes:
            now = self.clock()
            until = self.paused_until.get(route.name, 0.0)
            if until > now:
                paused_until = until if paused_until is None else min(paused_until, until)
                continue
            outcome = await self._send_on(route, record, text)
            outcomes.append(outcome)
            if outcome.accepted:
                return await self._finish(record, MessageStatus.ACCEPTED, outcomes, route=route.name)
            if outcome.maybe_sent:
                log.warning("sms_outcome_unknown", id=record.id, route=route.name, code=outcome.code,
                            detail=outcome.detail)
                return await self._finish(record, MessageStatus.UNKNOWN, outcomes, route=route.name,
                                          code=outcome.code, detail=outcome.detail)
            if outcome.limit == "day":
                until = self.daily_reset(self.clock())
                self.paused_until[route.name] = until
                log.warning("sms_route_paused", route=route.name, code=outcome.code, until=until)
                paused_until = until if paused_until is None else min(paused_until, until)
                continue
            if outcome.failover:
                log.warning("sms_failover", id=record.id, route=route.name, code=outcome.code)
                continue
            return await self._finish(record, MessageStatus.FAILED, outcomes, code=outcome.code,
                                      detail=f"{route.name}: {outcome.detail}".rstrip(": "))
        return await self._park(record, text, outcomes, paused_until)

    async def _send_on(self, route: SmsRoute, record: MessageRecord, text: str) -> SendOutcome:
        bucket = self.buckets.get(route.name)
        if bucket is None:
            bucket = self.buckets[route.name] = self.bucket_factory(route.name, self.rate, self.burst)
        outcome = SendOutcome(route.name, False, code="unsent")
        for attempt in range(self.rate_limit_retries + 1):
            await bucket.acquire()
            record.attempts += 1
            try:
                outcome = await route.send(record.to, text, kind=record.kind)
            except Exception as exc:  # a bug, not a provider answer: assume it may have gone out
                log.exception("sms_route_error", id=record.id, route=route.name)
                outcome = SendOutcome(route.name, False, code="error", detail=type(exc).__name__, maybe_sent=True)
            if outcome.limit != "second":
                if outcome.accepted:
                    await bucket.speed_up()
                return outcome
            if attempt < self.rate_limit_retries:
                delay = self.rate_limit_backoff * (2 ** attempt)
                log.warning("sms_rate_limited", id=record.id, route=route.name, attempt=attempt + 1, retry_in=delay)
                await bucket.slow_down(delay)
        return outcome

    async def _park(self, record: MessageRecord, text: str, outcomes: list[SendOutcome],
                    paused_until: float | None) -> SentMessage:
        now = self.clock()
        last = outcomes[-1] if outcomes else None
        if now - record.created_at > self.max_age:
            return await self._finish(record, MessageStatus.FAILED, outcomes, code="expired",
                                      detail="not accepted by any route in time")
        if paused_until is not None and (last is None or last.limit == "day"):
            not_before = paused_until
        else:
            parks = max(1, record.attempts)
            not_before = now + min(self.max_retry_delay, self.retry_delay * 2 ** min(parks - 1, 20))
            if paused_until is not None:
                not_before = min(not_before, paused_until)
        record.text = text
        if last is not None:
            record.code, record.detail = last.code, f"{last.provider}: {last.detail}".rstrip(": ")
        await self.log.park(record, not_before, now=now)
        log.warning("sms_parked", id=record.id, kind=record.kind, code=record.code, not_before=not_before)
        return self._result(record, MessageStatus.PARKED, outcomes)

    async def _finish(self, record: MessageRecord, status: MessageStatus, outcomes: list[SendOutcome], *,
                      route: str | None = None, code: str | None = None, detail: str | None = None) -> SentMessage:
        now = self.clock()
        record.status = status
        record.updated_at = now
        record.text = record.not_before = None  # kept only while PARKED
        if route is not None:
            record.route = route
        if status is MessageStatus.ACCEPTED:
            accepted = outcomes[-1]
            record.message_ids = accepted.message_ids
            record.request_id = accepted.request_id
            record.parts = accepted.parts or record.parts
            record.sent_at = now
            record.code = record.detail = None
        else:
            record.code, record.detail = code, detail
            if status is MessageStatus.FAILED:
                record.final_at = now
        try:
            await self.log.save(record)
        except Exception:
            # The message is out (or settled); a log write that fails must not make the caller
            # send it again. The store's own outage is reported by /healthz.
            log.exception("sms_log_write_failed", id=record.id, status=status.value)
        log.info("sms_" + status.value.lower(), id=record.id, kind=record.kind, route=record.route,
                 parts=record.parts, message_ids=list(record.message_ids), code=record.code)
        return self._result(record, status, outcomes)

    @staticmethod
    def _result(record: MessageRecord, status: MessageStatus, outcomes: Sequence[SendOutcome] = ()) -> SentMessage:
        return SentMessage(record.id, record.to, record.kind, status, record.parts, record.route,
                           tuple(record.message_ids), record.code, record.detail, record.not_before,
                           tuple(outcomes))

    # -- parked messages ---------------------------------------------------------------------
    async def flush_parked(self, limit: int = 100) -> list[SentMessage]:
        """Try again the parked messages whose time has come (call it periodically)."""
        due = await self.log.take_due(self.clock(), limit, lease=self.flush_lease)
        results = []
        for record in due:
            if record.status is not MessageStatus.PARKED or not record.text:
                await self.log.unpark(record.id)  # settled meanwhile (or a crash after sending)
                continue
            text = record.text
            if await self._opted_out(record):
                results.append(await self._finish(record, MessageStatus.OPTED_OUT, [], code="opted_out"))
                continue
            results.append(await self._deliver(record, text))
        return results

    # -- delivery status ---------------------------------------------------------------------
    async def delivery_report(self, provider: str, message_id: str, status_text: str) -> bool:
        """A delivery report (BDApps: provider "bdapps", the report's requestId). False when
        the id is unknown: acknowledge the report anyway and log it."""
        found = await self.log.update_status(provider, message_id, status_text, at=self.clock())
        if not found:
            log.info("sms_report_unknown_id", provider=provider, message_id=message_id, status=status_text[:40])
        return found

    async def poll_dinisoft(self, limit: int = 50) -> PollReport:
        """Ask DiniSoft `getstatus` about messages it accepted and has not settled."""
        return await self.poll_status(DINISOFT, limit)

    async def poll_status(self, provider: str, limit: int = 50) -> PollReport:
        route = self.routes.get(provider)
        if route is None or not isinstance(route, PollableRoute):
            return PollReport()
        checked = updated = errors = 0
        for record in await self.log.pending(provider, limit):
            message_id = record.message_ids[0]
            checked += 1
            try:
                status = await route.delivery_status(message_id)
            except UpstreamRejected as exc:
                # DiniSoft 114: unknown id, or "query has been done already" (a final state we
                # did not get to store). Nothing more can be learnt: stop asking.
                if exc.retryable:
                    errors += 1
                    continue
                await self.log.update_status(provider, message_id, MessageStatus.UNKNOWN.value, at=self.clock())
                updated += 1
                continue
            except UpstreamError as exc:
                log.warning("sms_poll_failed", provider=provider, id=record.id, code=exc.code)
                errors += 1
                continue
            word = _status_word(status.provider_status, status.state)
            if word is None or normalize_status(word) is MessageStatus.ACCEPTED:
                await self.log.checked(provider, record.id, self.clock())
                continue
            await self.log.update_status(provider, message_id, word, at=self.clock())
            updated += 1
        return PollReport(checked, updated, errors)


def _status_word(provider_status: str, state: str) -> str | None:
    """The provider's own word when we know it (DELIVRD, REJECTD...), else the client's state."""
    if normalize_status(provider_status) is not None:
        return provider_status
    return {"pending": "ACCEPTED", "sent": "ACCEPTED", "delivered": "DELIVERED",
            "failed": "UNDELIVERABLE"}.get(state)
