"""App-initiated USSD (`mt-init`, docs/upstreams.md): start a flow on a subscriber's phone.

`POST /push/ussd` with `Authorization: Bearer <ALAP_ADMIN_TOKEN>` and
`{"address": "tel:8801...", "flow": "parcel_notice", "vars": {...}}` answers 202 with the new
session id; the subscriber's `mo-cont` replies then continue the flow like any session. When the
gateway refuses the `mt-init` (non-S1000, e.g. not allowed for the app), the same notice goes
out by SMS instead. No token configured: the endpoint is off (404). Wrong token: 401. The
store unreachable: 503 with the BDApps-style temporary error (E1603), nothing started.

The send runs in the background after the 202, so it must never raise: a refused push and a
failed fallback SMS are both logged with their codes (`push_refused`, `push_sms_failed`).
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import msgspec
import structlog
from aiohttp import web

from ..engine.engine import Subscriber
from ..engine.session import encode_session
from ..render.budget import encoding_for
from ..integrations.bdapps import BdappsGateway
from ..store import StoreUnavailable
from ..store.funnel import FunnelHop, day_of, hop_counts
from .after_ack import AckedService
from .payloads import (TEMPORARY_ERROR, InvalidRequest, NonEmpty, decode, invalid_body, msisdn_of,
                       subscriber_key)

log = structlog.get_logger("alap.push")

NoticeFn = Callable[[str, str], Awaitable[object]]  # (address, text): the SMS fallback


class PushRequest(msgspec.Struct):
    address: NonEmpty
    flow: NonEmpty
    vars: dict[str, Any] = {}


@dataclass(kw_only=True)
class PushService(AckedService):
    gateway: BdappsGateway
    notice_by_sms: NoticeFn

    async def push(self, request: PushRequest) -> str:
        """Start the flow; returns the session id. The screen goes out in the background."""
        session_id, text, final = await self.open_session(request.address, request.flow, request.vars)
        self.spawn(self._send(session_id, request.address, text, final))
        return session_id

    async def open_session(self, address: str, flow: str, variables: dict[str, Any], *,
                           language: str | None = None) -> tuple[str, str, bool]:
        """Start `flow` for `address` and save its session: (session id, first screen, final?).
        The caller sends the screen (`mt-init`, or `mt-fin` when final). Broadcasts use this too
        (server/broadcast/ussd_runner.py)."""
        session_id = "push-" + secrets.token_hex(8)
        key = subscriber_key(address)
        claim = await self.store.claim(session_id, session_id, owner=key, profile_of=key)
        assert claim.lease is not None  # a fresh id cannot be busy or seen
        language = language or (claim.lease.profile.lang if claim.lease.profile else None) or self.default_language
        subscriber = Subscriber(session_id, address, msisdn_of(address))
        session, reply = await self.engine.start(subscriber, "", language, flow_name=flow, variables=variables,
                                                 deadline=claim.lease.turn_deadline)
        funnel = hop_counts(None, reply.entered, None if reply.final else (session.flow, session.state), reply.ended,
                            subscriber=key)
        await self.store.commit(claim.lease, None if reply.final else encode_session(session), self.session_ttl,
                                answered=False, funnel=funnel)
        return session_id, reply.text, reply.final

    async def close_session(self, session_id: str, address: str) -> None:
        """The gateway refused the push: no USSD session will follow; the funnel forgets where it
        waited (no abandonment counted)."""
        lease = await self.store.acquire(session_id)
        await self.store.commit(lease, None, self.session_ttl, answered=False,
                                funnel=FunnelHop(day_of(), subscriber_key(address)))

    async def _send(self, session_id: str, address: str, text: str, final: bool) -> None:
        result = await self.gateway.send_ussd(session_id, address, text, "mt-fin" if final else "mt-init",
                                              encoding_for(text))
        if result.ok:
            log.info("push_sent", session_id=session_id, address=address)
            return
        log.warning("push_refused", session_id=session_id, status_code=result.status_code,
                    detail=result.detail, fallback="sms")
        try:
            await self.close_session(session_id, address)
        except Exception as exc:  # the session then simply expires with its TTL
            log.warning("push_session_not_closed", session_id=session_id, error=f"{type(exc).__name__}: {exc}")
        try:
            sent = await self.notice_by_sms(address, text)
        except Exception as exc:  # StoreUnavailable (the opt-out check), or a bug: never out of the task
            log.error("push_sms_failed", session_id=session_id, ussd_status_code=result.status_code,
                      sms_code="store_unavailable" if isinstance(exc, StoreUnavailable) else type(exc).__name__,
                      detail=str(exc)[:200])
            return
        # `sent` is the SMS sender's SentMessage (server/messaging/sender.py); its status is a str enum.
        status = getattr(getattr(sent, "status", None), "value", "ACCEPTED")
        if status in ("ACCEPTED", "PARKED", "OPTED_OUT"):  # parked: the sender tries again later
            log.info("push_sms_sent", session_id=session_id, sms_status=status)
            return
        log.error("push_sms_failed", session_id=session_id, ussd_status_code=result.status_code,
                  sms_status=status, sms_code=getattr(sent, "code", None), detail=getattr(sent, "detail", None))


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
    try:
        session_id = await service.push(push)
    except StoreUnavailable as exc:
        log.error("push_store_unavailable", error=str(exc))
        return web.Response(body=TEMPORARY_ERROR, status=503, content_type="application/json")
    return web.json_response({"sessionId": session_id}, status=202)
