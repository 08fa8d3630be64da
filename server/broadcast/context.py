"""The parts a broadcast runner needs, made from settings (the command line and `alap worker`
build them the same way): the session store, the broadcast store next to it, one aiohttp
session, the BDApps client, the SMS sender, and for USSD the engine (loaded only when needed).
"""
from __future__ import annotations

from typing import Any

import aiohttp

from server.integrations.bdapps import BdappsGateway
from server.messaging import SmsSender, build_sms_sender
from server.render.environment import Renderer
from server.store import Store, open_store

from .redis_store import open_broadcast_store
from .runner import BroadcastRunner
from .sms_runner import SmsBroadcastRunner
from .store import BroadcastStore, Spec
from .ussd_runner import UssdBroadcastRunner


class BroadcastContext:
    def __init__(self, settings: Any, store: Store, http: aiohttp.ClientSession, *,
                 sender: SmsSender | None = None, owns: bool = False) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.bstore: BroadcastStore = open_broadcast_store(store)
        self.gateway = BdappsGateway(settings.bdapps_base_url, settings.bdapps_app_id, settings.bdapps_password, http,
                                     timeout=settings.bdapps_timeout)
        self.sender = sender or build_sms_sender(settings, http, store, gateway=self.gateway)
        self._senders: dict[str, SmsSender] = {}
        self._renderer: Renderer | None = None
        self._push: Any = None
        self._upstreams: Any = None
        self._owns = owns

    @classmethod
    def open(cls, settings: Any) -> "BroadcastContext":
        """Own store and HTTP session (the command line); close with aclose()."""
        store = open_store(settings.redis_url, settings.redis_prefix)
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30))
        return cls(settings, store, http, owns=True)

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.settings.templates_dir, self.settings.locales_dir, strict=True)
        return self._renderer

    def sender_for(self, route: str) -> SmsSender:
        """`auto` and `bdapps`: the process's sender; one route: a sender with only that route."""
        if route in ("auto", "bdapps"):
            return self.sender
        if route not in self._senders:
            only = self.settings.model_copy(update={"sms_routes": route})
            self._senders[route] = build_sms_sender(only, self.http, self.store, gateway=self.gateway)
        return self._senders[route]

    def push_service(self) -> Any:
        if self._push is None:
            from server.app import build_engine
            from server.bdapps.push import PushService
            from server.store.ledger import open_ledger
            from server.upstreams import Upstreams

            self._upstreams = Upstreams.from_settings(self.settings)
            engine = build_engine(self.settings, upstreams=self._upstreams, ledger=open_ledger(self.store))
            self._push = PushService(engine=engine, store=self.store, gateway=self.gateway,
                                     notice_by_sms=lambda to, text: self.sender.send(to, text, kind="notice"),
                                     session_ttl=self.settings.session_ttl,
                                     default_language=self.settings.default_language)
        return self._push

    def runner(self, spec: Spec, **options: Any) -> BroadcastRunner:
        options.setdefault("lease", self.settings.broadcast_lease)
        options.setdefault("rate_limit_hold", self.settings.broadcast_e1318_hold)
        if spec.kind == "ussd":
            return UssdBroadcastRunner(self.bstore, self.push_service(), self.sender, **options)
        return SmsBroadcastRunner(self.bstore, self.store, self.gateway, self.sender_for(spec.route), self.renderer,
                                  default_language=self.settings.default_language,
                                  source_address=self.settings.bdapps_sms_source_address, **options)

    async def __aenter__(self) -> "BroadcastContext":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for sender in self._senders.values():
            await sender.aclose()
        if self._upstreams is not None:
            await self._upstreams.aclose()
        if self._owns:
            await self.sender.aclose()
            await self.http.close()
            await self.store.close()
