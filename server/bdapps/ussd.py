"""The USSD hop: claim (owner check + dedupe + lock + load) before the ack, then in the
background run one engine turn inside the lock's lifetime, save, release and send the screen
through `/ussd/send`.

Order matters: the session is saved before the screen goes out, so the subscriber's next
reply (which can only come after they saw the screen) always finds the new state; a state that
could not be saved ends the session with a "service busy" screen instead. A re-dial after a
dropped call may first be offered to continue (server/bdapps/resume.py).
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import structlog

from .. import metrics
from ..engine.engine import Reply, Subscriber
from ..engine.session import decode_session, encode_session
from ..render import system
from ..render.budget import encoding_for
from ..integrations.bdapps import BdappsGateway
from ..store import Claim, ForeignSession, HopSuperseded, LockTimeout, SessionLease, StoreUnavailable
from ..store.funnel import FunnelHop, day_of, hop_counts
from .admission import HopGate
from .payloads import UssdReceive, msisdn_of, subscriber_key
from .after_ack import AckedService, apply_profile_changes
from .resume import Resumes, is_offer

log = structlog.get_logger("alap.ussd")


@dataclass(kw_only=True)
class UssdService(AckedService):
    gateway: BdappsGateway
    resumes: Resumes = Resumes(window=0, session_ttl=0)
    # This worker's hop outcomes, for tests and debugging: "duplicate" (a redelivery dropped at
    # the claim), "sent" and "send_failed" (the screen's /ussd/send). Operators read the
    # Prometheus metrics (server/metrics.py) instead.
    stats: Counter[str] = field(default_factory=Counter)
    gate: HopGate = field(default_factory=HopGate)

    async def receive(self, mo: UssdReceive) -> bool:
        """Claim the hop. True when it was accepted (a background task now owns it), False for a
        duplicate delivery. Raises Overloaded, before anything is stored, when the worker has
        its limit of hops in flight (server/bdapps/admission.py); StoreUnavailable when the
        store cannot be reached, and ForeignSession when the session belongs to another
        subscriber (nothing was changed)."""
        started = time.perf_counter()
        self.gate.enter()
        accepted = False
        try:
            owner = subscriber_key(mo.sourceAddress)
            initial = mo.ussdOperation == "mo-init"
            profile_of = owner if initial else None
            resume_of = self.resumes.key_for_dial(self.engine, mo) if initial else None
            claim = await self.store.claim(mo.sessionId, mo.requestId, owner=owner, profile_of=profile_of,
                                           resume_of=resume_of)
            if claim.status == "foreign":
                log.warning("ussd_foreign_session", session_id=mo.sessionId, address=mo.sourceAddress)
                raise ForeignSession(mo.sessionId)
            if claim.status == "duplicate":
                self.stats["duplicate"] += 1
                log.info("ussd_duplicate", session_id=mo.sessionId, request_id=mo.requestId)
                return False
            self.spawn(self._hop(mo, claim, started)).add_done_callback(self._hop_done)
            accepted = True
            return True
        finally:
            if not accepted:
                self.gate.leave()

    def _hop_done(self, _task: asyncio.Task) -> None:
        self.gate.leave()

    async def _hop(self, mo: UssdReceive, claim: Claim, started: float) -> None:
        """Exactly one screen for an acknowledged hop, whatever happens (server/store/base.py
        explains the one exception: a redelivery took the hop over and sends it instead)."""
        lease = claim.lease
        try:
            if lease is None:  # another hop of this session held the lock: wait our turn
                lease = await self.store.acquire(
                    mo.sessionId, pending=claim.pending,
                    profile_of=subscriber_key(mo.sourceAddress) if mo.ussdOperation == "mo-init" else None)
            reply = await self._turn(mo, lease)
        except HopSuperseded:
            log.info("ussd_hop_superseded", session_id=mo.sessionId, request_id=mo.requestId)
            return
        except ForeignSession:  # another address took the session while this hop waited
            log.warning("ussd_foreign_session", session_id=mo.sessionId, address=mo.sourceAddress)
            return
        except LockTimeout:
            log.error("ussd_lock_timeout", session_id=mo.sessionId)
            reply = self.engine.system_reply(self.default_language, system.SERVICE_BUSY, "error")
        except StoreUnavailable as exc:
            log.error("ussd_store_unavailable", session_id=mo.sessionId, error=str(exc))
            reply = self.engine.system_reply(self.default_language, system.SERVICE_BUSY, "error")
        except Exception:
            log.exception("ussd_hop_failed", session_id=mo.sessionId)
            reply = self.engine.system_reply(self.default_language, system.SYSTEM_ERROR, "error")
            if lease is not None:
                await self._forget(lease, mo)
        await self._send(mo, reply, started)

    async def _turn(self, mo: UssdReceive, lease: SessionLease) -> Reply:
        profile_of = subscriber_key(mo.sourceAddress)
        subscriber = Subscriber(mo.sessionId, mo.sourceAddress, msisdn_of(mo.sourceAddress))
        before: tuple[str, str] | None = None
        resumed = False
        if mo.ussdOperation == "mo-init":
            offer = self.resumes.offer(self.engine, lease.resume, mo) if lease.resume else None
            if offer is not None:  # a re-dial after a dropped call: continue or start again?
                return await self._offer(lease, *offer, answered=False)
            language = lease.profile.lang if lease.profile else None
            session, reply = await self.engine.start(subscriber, mo.message, language or self.default_language,
                                                     deadline=lease.turn_deadline)
        elif is_offer(lease.session):
            chosen, reply, resumed = await self.resumes.answer(self.engine, lease.session, subscriber,
                                                               mo.message, deadline=lease.turn_deadline)
            if chosen is None:  # not 1 or 2: the offer again
                return await self._offer(lease, lease.session, reply, answered=True)
            session = chosen
        else:
            session = decode_session(lease.session)
            if session is None:
                await self.store.release(lease)
                profile = await self.store.get_profile(profile_of)
                return self.engine.system_reply(profile.lang or self.default_language, system.SESSION_ENDED)
            before = (session.flow, session.state)
            reply = await self.engine.advance(session, subscriber, mo.message, deadline=lease.turn_deadline)
        data = None if reply.final else encode_session(session)
        answered = mo.ussdOperation == "mo-cont"
        funnel = hop_counts(before, reply.entered, None if reply.final else (session.flow, session.state),
                            reply.ended or ("error" if reply.final else None), subscriber=profile_of)
        if resumed:  # the console's "resumed" column (server/admin/views.py)
            funnel.increments.append((session.flow, "resumed"))
        resume = self.resumes.record(self.engine, session, reply, mo.sourceAddress, data)
        if not await self.store.commit(lease, data, self.session_ttl, answered=answered, funnel=funnel,
                                       resume=resume):
            # The lock ran out and the state was not saved: a screen that waits for input would
            # be answered against a state the next hop cannot find. End the session instead.
            log.error("ussd_lock_lost", session_id=mo.sessionId)
            return self.engine.system_reply(session.lang, system.SERVICE_BUSY, "error")
        await apply_profile_changes(self.store, profile_of, reply)
        return reply

    async def _offer(self, lease: SessionLease, data: bytes, reply: Reply, *, answered: bool) -> Reply:
        """Save the resume offer as this session's state (like any state: not saved, no screen
        that waits for input). It is no state of a flow: the funnel counts nothing."""
        if not await self.store.commit(lease, data, self.session_ttl, answered=answered):
            log.error("ussd_lock_lost", session_id=lease.session_id)
            return self.engine.system_reply(self.default_language, system.SERVICE_BUSY, "error")
        return reply

    async def _forget(self, lease: SessionLease, mo: UssdReceive) -> None:
        try:
            await self.store.commit(lease, None, self.session_ttl, answered=True,
                                    funnel=FunnelHop(day_of(), subscriber_key(mo.sourceAddress)),
                                    resume=self.resumes.forget(self.engine, mo, lease))
        except (StoreUnavailable, HopSuperseded):
            pass

    async def _send(self, mo: UssdReceive, reply: Reply, started: float) -> None:
        operation = "mt-fin" if reply.final else "mt-cont"
        result = await self.gateway.send_ussd(mo.sessionId, mo.sourceAddress, reply.text, operation,
                                              encoding_for(reply.text))
        elapsed = time.perf_counter() - started
        if result.ok:
            self.stats["sent"] += 1
        else:
            self.stats["send_failed"] += 1
        metrics.hop_seconds(mo.ussdOperation).observe(elapsed)
        for flow, state in reply.entered:
            metrics.state_entries(flow, state).inc()
        if reply.ended:
            metrics.sessions_ended(reply.ended).inc()
        flow, state = reply.entered[-1] if reply.entered else (None, None)
        log.info("ussd_hop", session_id=mo.sessionId, address=mo.sourceAddress, operation=mo.ussdOperation,
                 flow=flow, state=state, reply=operation, ended=reply.ended, sent=result.ok,
                 status_code=result.status_code, latency_ms=round(elapsed * 1000, 1))
