"""Resuming a dropped USSD call.

Every hop that leaves a session on a resumable screen also saves a copy of it as the resume
record of (subscriber, dialled flow), for `ALAP_SESSION_TTL + ALAP_RESUME_WINDOW` seconds: the
session may time out, then the subscriber has the window to re-dial. A final screen, or a
screen whose flow or state says `resume: false`, forgets the record in the same round trip
(server/store/base.py). A re-dial of the same service (a plain `*213#`, not a shortcut such as
`*213*2*1250#`, which is an explicit new request) reads the record in the claim's round trip
and, when there is one, answers with the offer instead of the flow's first screen:

    1. Continue where you left off      the new session takes the old one's data (state, page,
                                        variables, back history, pinned flow versions) and
                                        shows its screen again
    2. Start again                      the dialled flow starts afresh; the record is replaced

While the offer is on the phone the new session holds an `Offer` (not an engine session).
SMS conversations never get here (server/bdapps/sms.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import msgspec
import structlog

from .. import metrics
from ..engine.engine import Engine, Reply, Subscriber
from ..engine.session import Session, decode_session
from ..msisdn import normalise_digits
from ..render import system
from ..store import SessionLease
from ..store.base import ResumeKey, ResumeWrite
from .payloads import UssdReceive, subscriber_key

log = structlog.get_logger("alap.resume")

CONTINUE, RESTART = "1", "2"
_OFFER_MARK = b'{"offer":'


class Offer(msgspec.Struct, kw_only=True):
    offer: msgspec.Raw  # the dropped session, exactly as it was saved
    dialled: str  # what the subscriber dialled, to start again from
    lang: str


_offer_decoder = msgspec.json.Decoder(Offer)


def is_offer(data: bytes | None) -> bool:
    return bool(data) and data.startswith(_OFFER_MARK)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Resumes:
    window: int  # ALAP_RESUME_WINDOW; 0 = off (no record is read or written)
    session_ttl: int

    # -- records ------------------------------------------------------------------------------
    def key_for_dial(self, engine: Engine, mo: UssdReceive) -> ResumeKey | None:
        """On mo-init: the record a plain re-dial of this service may continue."""
        if not self.window:
            return None
        flow, shortcut = engine.dialled(mo.message)
        return None if shortcut else ResumeKey(subscriber_key(mo.sourceAddress), flow.name)

    def record(self, engine: Engine, session: Session, reply: Reply, address: str,
               data: bytes | None) -> ResumeWrite | None:
        """What a hop's commit does to the record: keep this screen, or forget the record."""
        if not self.window or session.channel != "ussd" or not self._dialable(engine, session.root):
            return None  # SMS, or a pushed flow nobody can dial: there is no re-dial to offer
        key = ResumeKey(subscriber_key(address), session.root)
        if reply.final or data is None or not engine.resumable(session):
            return ResumeWrite(key, None, 0)
        return ResumeWrite(key, data, self.session_ttl + self.window)

    @staticmethod
    def _dialable(engine: Engine, root: str | None) -> bool:
        return bool(root) and (root == engine.default_flow.name
                               or any(flow.name == root for flow in engine.by_code.values()))

    def forget(self, engine: Engine, mo: UssdReceive, lease: SessionLease) -> ResumeWrite | None:
        """A hop that failed with a final error screen: that session is never offered."""
        if not self.window:
            return None
        session = decode_session(lease.session)
        root = session.root if session else engine.dialled(mo.message)[0].name
        return ResumeWrite(ResumeKey(subscriber_key(mo.sourceAddress), root or ""), None, 0)

    # -- the offer ----------------------------------------------------------------------------
    def offer(self, engine: Engine, record: bytes | None, mo: UssdReceive) -> tuple[bytes, Reply] | None:
        """The offer screen and what the new session holds meanwhile; None: nothing to offer."""
        dropped = decode_session(record)
        if dropped is None:
            return None
        data = msgspec.json.encode(Offer(offer=msgspec.Raw(record), dialled=mo.message, lang=dropped.lang))
        metrics.RESUMES.labels(dropped.flow, dropped.state, "offered").inc()
        log.info("resume_offered", session_id=mo.sessionId, flow=dropped.flow, state=dropped.state)
        return data, engine.system_menu(dropped.lang, [system.RESUME_CONTINUE, system.RESUME_RESTART])

    async def answer(self, engine: Engine, data: bytes, subscriber: Subscriber, text: str,
                     *, deadline: float | None = None) -> tuple[Session | None, Reply, bool]:
        """The subscriber's choice on the offer: (the session to save, the screen, whether it
        continues the dropped session). An invalid choice shows the offer again (session None:
        the offer stays as it is)."""
        offer = _offer_decoder.decode(data)
        dropped = decode_session(offer.offer)
        choice = normalise_digits(text).strip()
        if dropped is None or choice not in (CONTINUE, RESTART):
            menu = [system.RESUME_CONTINUE, system.RESUME_RESTART]
            return None, engine.system_menu(offer.lang, menu, notice=system.INVALID_CHOICE), False
        outcome = "accepted" if choice == CONTINUE else "declined"
        metrics.RESUMES.labels(dropped.flow, dropped.state, outcome).inc()
        log.info(f"resume_{outcome}", session_id=subscriber.session_id, flow=dropped.flow, state=dropped.state)
        if choice == CONTINUE:
            return dropped, await engine.show(dropped, subscriber), True
        return *await engine.start(subscriber, offer.dialled, offer.lang, deadline=deadline), False
