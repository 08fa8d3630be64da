"""Outbound messaging: every SMS Alap sends goes through one `SmsSender`.

Layer rules: this package may import integrations (the BDApps client is
server/integrations/bdapps.py), server/msisdn.py (`subscriber_key`, so opt-out reads the same
profile key the transport writes) and the store; never the transport (server/bdapps/). Only
actions and the transport wiring import it.

    sender = build_sms_sender(settings, http_session, store)
    sent = await sender.send("tel:8801812345678", "আপনার রিচার্জ সম্পন্ন হয়েছে", kind="receipt",
                             reply_to_request=True)
    await sender.flush_parked()          # periodically: per-day-limited / failed-over messages
    await sender.poll_dinisoft()         # periodically: DiniSoft has no delivery reports
    await sender.delivery_report("bdapps", report.requestId, report.deliveryStatus)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

from server.integrations.bdapps import BdappsGateway
from server.integrations.aamarsms import AamarSmsClient
from server.integrations.dinisoft import DiniSoftClient
from server.store import open_message_log
from server.store.messages import MessageLog, MessageRecord, MessageStatus

from .policy import DEFAULT_ROUTES, KNOWN_ROUTES, RoutingPolicy, parse_routes
from .routes import (
    AAMARSMS, BDAPPS, DINISOFT, KINDS, AamarSmsRoute, BdappsRoute, DiniSoftRoute, Kind, SendOutcome, SmsRoute,
)
from .sender import PollReport, SentMessage, SmsSender, next_dhaka_day
from .throttle import SharedTokenBucket, TokenBucket, open_bucket

if TYPE_CHECKING:
    from server.store.base import Store

DEFAULT_SMS_RATE = 10.0  # per second per route


def build_sms_sender(settings: Any, http_session: aiohttp.ClientSession, store: Store | None, *,
                     message_log: MessageLog | None = None, gateway: BdappsGateway | None = None,
                     **options: Any) -> SmsSender:
    """The process's SmsSender from settings (call it where the aiohttp session is made).

    Settings read (missing attributes take the default, so this works before config.py has them):
      sms_routes (ALAP_SMS_ROUTES, "bdapps,aamarsms,dinisoft"), sms_rate (ALAP_SMS_RATE, 10),
      bdapps_sms_source_address (BDAPPS_SMS_SOURCE_ADDRESS, unset), and the existing
      BDAPPS_*, AAMARSMS_*, DINISOFT_* credentials. A route whose credentials are empty is left
      out. The message log sits next to the store (same Redis client and prefix, or memory), and
      so do the routes' throttles: with Redis, every process shares one bucket per route.
    `options` go to SmsSender (rate_limit_backoff, retry_delay, clock...). Close with aclose().
    """
    order = parse_routes(getattr(settings, "sms_routes", None) or DEFAULT_ROUTES)
    routes: list[SmsRoute] = []
    owned: list[Any] = []
    for name in order:
        if name == BDAPPS and settings.bdapps_app_id and settings.bdapps_password:
            gw = gateway or BdappsGateway(settings.bdapps_base_url, settings.bdapps_app_id,
                                          settings.bdapps_password, http_session,
                                          timeout=getattr(settings, "bdapps_timeout", 3.0))
            routes.append(BdappsRoute(gw, source_address=getattr(settings, "bdapps_sms_source_address", None)))
        elif name == AAMARSMS and settings.aamarsms_user and settings.aamarsms_password:
            client = AamarSmsClient(settings.aamarsms_base_url, settings.aamarsms_user,
                                    settings.aamarsms_password, settings.aamarsms_from)
            owned.append(client)
            routes.append(AamarSmsRoute(client))
        elif name == DINISOFT and settings.dinisoft_api_key and settings.dinisoft_secret_key:
            client = DiniSoftClient(settings.dinisoft_base_url, settings.dinisoft_api_key,
                                    settings.dinisoft_secret_key, settings.dinisoft_caller_id)
            owned.append(client)
            routes.append(DiniSoftRoute(client))
    rate = getattr(settings, "sms_rate", None)
    options.setdefault("rate", DEFAULT_SMS_RATE if rate is None else float(rate))
    client, prefix = getattr(store, "redis", None), getattr(store, "prefix", "alap:")
    options.setdefault("bucket_factory", lambda route, rate, burst: open_bucket(route, rate, burst, redis=client,
                                                                                 prefix=prefix))
    return SmsSender(routes, message_log or open_message_log(store), store, policy=RoutingPolicy(order),
                     owned=owned, **options)


__all__ = [
    "AAMARSMS", "BDAPPS", "DEFAULT_ROUTES", "DEFAULT_SMS_RATE", "DINISOFT", "KINDS", "KNOWN_ROUTES",
    "AamarSmsRoute", "BdappsRoute", "DiniSoftRoute", "Kind", "MessageLog", "MessageRecord", "MessageStatus",
    "PollReport", "RoutingPolicy", "SendOutcome", "SentMessage", "SharedTokenBucket", "SmsRoute", "SmsSender",
    "TokenBucket", "open_bucket",
    "build_sms_sender", "next_dhaka_day", "parse_routes",
]
