"""One rule for "may have been delivered" (server/integrations/delivery.py): a connection that
drops after the request was written is never sent again as new, whether it carried a USSD
screen (aiohttp, BDApps `/ussd/send`) or an SMS (httpx, AamarSMS and DiniSoft). Real sockets."""
from __future__ import annotations

import asyncio

import aiohttp

from server.app import create_app
from server.bdapps.routes import USSD_SERVICE
from server.integrations.aamarsms import AamarSmsClient
from server.integrations.dinisoft import DiniSoftClient
from server.messaging.policy import RoutingPolicy
from server.messaging.routes import AamarSmsRoute, DiniSoftRoute
from server.messaging.sender import SmsSender
from server.store.messages import MessageStatus
from server.store.messages_memory import MemoryMessageLog

from .. import conftest
from ..helpers.hang_up import HangUpServer
from ..helpers.hop_stack import ACK, mo


async def test_a_ussd_screen_whose_connection_dropped_is_not_sent_again(aiohttp_server, redis_store):
    gateway = await HangUpServer.start()
    app = create_app(conftest.test_settings(bdapps_base_url=gateway.url), store=redis_store)
    server = await aiohttp_server(app)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(str(server.make_url("/bdapps/ussd")), json=mo("dropped", "r1", "mo-init", "*213#")) \
                    as resp:
                assert (resp.status, await resp.json()) == (200, ACK)
        service = app[USSD_SERVICE]
        for _ in range(500):
            if not service.tasks:
                break
            await asyncio.sleep(0.02)
        assert service.stats["send_failed"] == 1
        assert gateway.requests == 1  # the screen may be on the phone: never a second copy
    finally:
        await gateway.close()


async def test_an_sms_whose_connection_dropped_is_unknown_and_not_failed_over():
    first, second = await HangUpServer.start(), await HangUpServer.start()
    aamarsms = AamarSmsClient(first.url, "user", "secret", "Alap")
    dinisoft = DiniSoftClient(second.url, "key", "secret", "8809600000000")
    sender = SmsSender([AamarSmsRoute(aamarsms), DiniSoftRoute(dinisoft)], MemoryMessageLog(),
                       policy=RoutingPolicy(["aamarsms", "dinisoft"]), rate=0)
    try:
        sent = await sender.send("tel:8801812345678", "Your parcel is on its way", kind="notice")
        assert sent.status is MessageStatus.UNKNOWN and sent.code == "disconnected"
        assert (first.requests, second.requests) == (1, 0)  # never a second copy on another route
    finally:
        await aamarsms.aclose()
        await dinisoft.aclose()
        await first.close()
        await second.close()
