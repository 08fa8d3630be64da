"""App-initiated USSD (`mt-init`, seed 004 section 4): start a flow on a subscriber's phone.

`POST /push/ussd` with `Authorization: Bearer <ALAP_ADMIN_TOKEN>` and
`{"address": "tel:8801...", "flow": "parcel_notice", "vars": {...}}` answers 202 with the new
session id; the subscriber's `mo-cont` replies then continue the flow like any session. When the
gateway refuses the `mt-init` (non-S1000, e.g. not allowed for the app), the same notice goes
out by SMS instead. No token configured: the endpoint is off (404). Wrong token: 401.
"""
from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import msgspec
import structlog
from aiohttp import web

from ..engine.engine import Engine, Subscriber
from ..engine.session import encode_session
from ..render.budget import encoding_for
from ..store import Store
from ..store.funnel import FunnelHop, day_of, hop_counts
from .background import spawn
from .client import BdappsGateway
from .payloads import InvalidRequest, NonEmpty, decode, invalid_body, msisdn_of, subscriber_key

log = structlog.get_logger("alap.push")

NoticeFn = Callable[[str, str], Awaitable[object]]  # (address, text): the SMS fallback


class PushRequest(msgspec.Struct):
    address: NonEmpty
    flow: NonEmpty
    vars: dict[str, Any] = {}


@dataclass
class PushService:
    engine: Engine
    store: Store
    gateway: BdappsGateway
    notice_by_sms: NoticeFn
    session_ttl: int
    default_language: str
    tasks: set[asyncio.Task] = field(default_factory=set)

    async def push(self, request: PushRequest) -> str:
        """Start the flow; returns the session id. The screen goes out in the background."""
        session_id = "push-" + secrets.token_hex(8)
        key = subscriber_key(request.address)
        claim = await self.store.claim(session_id, session_id, profile_of=key)
        assert claim.lease is not None  # a fresh id cannot be busy or seen
        language = (claim.lease.profile.lang if claim.lease.profile else None) or self.default_language
        subscriber = Subscriber(session_id, request.address, msisdn_of(request.address))
        session, reply = await self.engine.start(subscriber, "", language, flow_name=request.flow,
                                                 variables=request.vars)
        funnel = hop_counts(None, reply.entered, None if reply.final else (session.flow, session.state), reply.ended,
                            subscriber=key)
        await self.store.commit(claim.lease, None if reply.final else encode_session(session), self.session_ttl,
                                answered=False, funnel=funnel)
        spawn(self.tasks, self._send(session_id, request.address, reply.text, reply.final))
        return session_id

    async def _send(self, session_id: str, address: str, text: str, final: bool) -> None:
        result = await self.gateway.send_ussd(session_id, address, text, "mt-fin" if final else "mt-init",
                                              encoding_for(text))
        if result.ok:
            log.info("push_sent", session_id=session_id, address=address)
            return
        log.warning("push_refused_sending_sms", session_id=session_id, status_code=result.status_code)
        lease = await self.store.acquire(session_id)
        # No USSD session will follow; the funnel forgets where it waited (no abandonment counted).
        await self.store.commit(lease, None, self.session_ttl, answered=False,
                                funnel=FunnelHop(day_of(), subscriber_key(address)))
        await self.notice_by_sms(address, text)


PUSH_SERVICE = web.AppKey("push_service", PushService)
ADMIN_TOKEN = web.AppKey("admin_token", str)


async def push_ussd(request: web.Request) -> web.Response:
    token = request.app.get(ADMIN_TOKEN) or ""
    if not token:
        raise web.HTTPNotFound()
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return web.json_response({"error": "unauthorized"}, status=401)
    try:
        push = decode(await request.read(), PushRequest)
    except InvalidRequest as exc:
        return web.Response(body=invalid_body(str(exc)), status=400, content_type="application/json")
    service = request.app[PUSH_SERVICE]
    if push.flow not in service.engine.flows:
        return web.Response(body=invalid_body(f"unknown flow {push.flow[:40]!r}"), status=400,
                            content_type="application/json")
    session_id = await service.push(push)
    return web.json_response({"sessionId": session_id}, status=202)
