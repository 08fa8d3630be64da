"""Delivery reports for broadcasts. The report route (server/bdapps/routes.py) calls one hook;
this one finds the recipient of a broadcast (batched sends are indexed by message id in the
broadcast store) and otherwise hands the report to the SMS sender's message log as before.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from server.messaging import SmsSender

from .store import BroadcastStore, report_status

ReportFn = Callable[[str, str, str], Awaitable[bool]]


def delivery_report_hook(sender: SmsSender, bstore: BroadcastStore) -> ReportFn:
    async def on_report(provider: str, message_id: str, status_text: str) -> bool:
        if await bstore.report(provider, message_id, report_status(status_text)):
            # A broadcast's SMS fallback (or one-by-one route) is in the message log too.
            await sender.log.update_status(provider, message_id, status_text, at=sender.clock())
            return True
        return await sender.delivery_report(provider, message_id, status_text)

    return on_report
