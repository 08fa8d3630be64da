"""USSD broadcasts: an `mt-init` per recipient (server/bdapps/push.py opens the session, the
subscriber's replies continue it like any session), at the route's rate, a few at a time.

Per recipient: opted out (STOP) -> skipped; the gateway accepts -> SENT; no clear answer
(timeout, cut connection, unreadable answer) -> UNKNOWN, and no SMS either (the screen may be
on the phone); E1318 -> the bucket brakes and the recipient goes again; E1319 -> the broadcast
is PARKED until tomorrow; any other refusal -> the same screen by SMS (the fallback `alap push`
has), whose outcome is the recipient's.
"""
from __future__ import annotations

import asyncio
from typing import Any

import structlog

from server.bdapps.push import PushService
from server.messaging import BDAPPS, SmsSender, next_dhaka_day
from server.render.budget import encoding_for

from .runner import MAX_RATE_LIMIT_HOLD, STATUS_OF_SENT, BatchResult, BroadcastRunner, Halt, decode_entry
from .store import CANCELLED, PARKED, Spec, Status

log = structlog.get_logger("alap.broadcast")

USSD_CONCURRENCY = 16  # mt-init requests in flight (the bucket sets the rate)
AMBIGUOUS = ("timeout", "transport", "malformed")


class UssdBroadcastRunner(BroadcastRunner):
    def __init__(self, bstore: Any, push: PushService, sender: SmsSender, **options: Any) -> None:
        super().__init__(bstore, **options)
        self.push = push
        self.sender = sender
        self.bucket = sender.bucket_for(BDAPPS)  # shared with the server's own SMS

    async def send_batch(self, spec: Spec, items: list[tuple[int, str]]) -> BatchResult:
        result = BatchResult()
        entries = [(seq, decode_entry(raw)) for seq, raw in items]
        profiles = await self.push.store.get_profiles([e.address for _, e in entries])
        todo = []
        for (seq, entry), profile in zip(entries, profiles):
            if profile.opted_out:
                result.outcomes.append((seq, Status.OPTED_OUT.value))
            else:
                todo.append((seq, entry.address, {**spec.vars, **entry.columns}))
        if not todo:
            return result
        if not await self.begin([seq for seq, _, _ in todo]):
            result.halt = Halt(CANCELLED)
            return result
        limit = asyncio.Semaphore(USSD_CONCURRENCY)

        async def one(seq: int, address: str, variables: dict[str, str]) -> None:
            async with limit:
                if result.halt is None:
                    await self._one(spec, seq, address, variables, result)

        await asyncio.gather(*(one(*item) for item in todo))
        return result

    async def _one(self, spec: Spec, seq: int, address: str, variables: dict[str, str], result: BatchResult) -> None:
        assert spec.flow is not None
        session_id, text, final = await self.push.open_session(address, spec.flow, variables, language=spec.lang)
        hold = self.rate_limit_hold
        while True:
            await self.bucket.acquire()
            answer = await self.push.gateway.send_ussd(session_id, address, text, "mt-fin" if final else "mt-init",
                                                       encoding_for(text))
            if answer.ok:
                await self.bucket.speed_up()
                result.outcomes.append((seq, Status.SENT.value))
                return
            if answer.status_code != "E1318":
                break
            result.slowed += 1
            await self.bucket.slow_down(hold)
            hold = min(hold * 2, MAX_RATE_LIMIT_HOLD)
            await self.renew()
        if answer.status_code in AMBIGUOUS:
            log.warning("broadcast_outcome_unknown", broadcast=self.name, code=answer.status_code)
            result.outcomes.append((seq, Status.UNKNOWN.value))
            return
        await self.push.close_session(session_id, address)
        if answer.status_code == "E1319":
            if result.halt is None:
                result.halt = Halt(PARKED, "E1319: per-day limit reached", next_dhaka_day(self.clock()))
            return
        sent = await self.sender.send(address, text, kind="notice")  # the fallback of `alap push`
        log.info("broadcast_ussd_fallback_sms", broadcast=self.name, code=answer.status_code,
                 sms=sent.status.value)
        result.outcomes.append((seq, STATUS_OF_SENT.get(sent.status.value, Status.UNKNOWN).value))
        if sent.route:
            for message_id in sent.message_ids:
                result.reports.append((sent.route, message_id, seq))
