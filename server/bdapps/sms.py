"""MO SMS: keyword commands and multi-turn SMS conversations on the same engine as USSD.

An SMS session is keyed by the subscriber (one conversation per phone), lives
`ALAP_SMS_SESSION_TTL` seconds, and runs lock-then-load-then-save like a USSD hop. The first
word picks a flow by its `keywords:`; an open conversation takes the message as its next
input unless the word is an interrupting keyword (STOP, HELP, LANG). Replies go out through
the outbound SMS sender as replies to the subscriber's own request (so opt-out never blocks them).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import structlog

from ..engine.engine import Reply, Subscriber
from ..engine.session import decode_session, encode_session
from ..render import system
from ..store import Claim, HopSuperseded, LockTimeout, SessionLease, StoreUnavailable
from .payloads import SmsReceive, msisdn_of, subscriber_key
from .after_ack import AckedService, apply_profile_changes

log = structlog.get_logger("alap.sms")

# (destination address as received, text) -> None; the outbound SMS sender's reply path.
ReplyFn = Callable[[str, str], Awaitable[object]]


@dataclass(kw_only=True)
class SmsService(AckedService):
    reply: ReplyFn

    async def receive(self, mo: SmsReceive) -> bool:
        """Claim the message; False for a duplicate delivery. Raises StoreUnavailable."""
        key = subscriber_key(mo.sourceAddress)
        claim = await self.store.claim(f"sms:{key}", mo.requestId, profile_of=key)
        if claim.status == "duplicate":
            log.info("sms_duplicate", request_id=mo.requestId)
            return False
        self.spawn(self._handle(mo, key, claim, time.perf_counter()))
        return True

    async def _handle(self, mo: SmsReceive, key: str, claim: Claim, started: float) -> None:
        lease = claim.lease
        try:
            if lease is None:
                lease = await self.store.acquire(f"sms:{key}", pending=claim.pending, profile_of=key)
            reply = await self._turn(mo, key, lease)
        except HopSuperseded:  # a redelivery of this message took it over and answers it
            log.info("sms_superseded", request_id=mo.requestId)
            return
        except (LockTimeout, StoreUnavailable) as exc:
            log.error("sms_store_problem", error=type(exc).__name__)
            reply = self.engine.system_reply(self.default_language, system.SERVICE_BUSY, channel="sms")
        except Exception:
            log.exception("sms_failed")
            reply = self.engine.system_reply(self.default_language, system.SYSTEM_ERROR, channel="sms")
            if lease is not None:
                with contextlib.suppress(StoreUnavailable, HopSuperseded):
                    await self.store.commit(lease, None, self.session_ttl)
        try:
            await self.reply(mo.sourceAddress, reply.text)
        except Exception:
            log.exception("sms_reply_failed")
        log.info("sms_turn", address=mo.sourceAddress, flow=reply.entered[-1][0] if reply.entered else None,
                 final=reply.final, latency_ms=round((time.perf_counter() - started) * 1000, 1))

    async def _turn(self, mo: SmsReceive, key: str, lease: SessionLease) -> Reply:
        subscriber = Subscriber(f"sms:{key}", mo.sourceAddress, msisdn_of(mo.sourceAddress))
        language = (lease.profile.lang if lease.profile else None) or self.default_language
        session = decode_session(lease.session)
        flow, keyword, args = self.engine.match_keyword(mo.message)
        if session is not None and not (flow is not None and flow.interrupt):
            reply = await self.engine.advance(session, subscriber, mo.message, deadline=lease.turn_deadline)
        else:
            variables = {"args": args, "keyword": keyword}
            if flow is None:
                flow = self.engine.sms_default
                variables = {"args": args, "unknown": keyword}
            if flow is None:
                await self.store.release(lease)
                return self.engine.system_reply(language, system.INVALID_CHOICE, channel="sms")
            session, reply = await self.engine.start(subscriber, mo.message, language, channel="sms",
                                                     flow_name=flow.name, variables=variables,
                                                     deadline=lease.turn_deadline)
        if not await self.store.commit(lease, None if reply.final else encode_session(session), self.session_ttl):
            log.error("sms_lock_lost", address=mo.sourceAddress)  # as server/bdapps/ussd.py: no reply without state
            return self.engine.system_reply(session.lang, system.SERVICE_BUSY, channel="sms")
        await apply_profile_changes(self.store, key, reply)
        return reply
