"""A console over real HTTP: the app with ALAP_ADMIN_TOKEN set, a real Redis store and ledger."""
from __future__ import annotations

import base64
from contextlib import asynccontextmanager
from typing import AsyncIterator

from server.app import LEDGER
from server.store.ledger import Ledger, RechargeRecord, RechargeState, new_record
from tests.conftest import Stack, redis_test_store, start_stack

TOKEN = "console-Token-42"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()}


@asynccontextmanager
async def console(aiohttp_server, redis_url: str, **settings) -> AsyncIterator[Stack]:
    async with redis_test_store(redis_url) as store:
        stack = await start_stack(aiohttp_server, store=store, admin_token=TOKEN, **settings)
        try:
            yield stack
        finally:
            await stack.http.close()


async def record_needing_review(ledger: Ledger, *, recipient: str = "01712345678", payer: str = "tel:8801812345678",
                                note: str = "2 debit outcomes unknown") -> RechargeRecord:
    record = new_record(idempotency_key=f"test-{recipient}-{note}", payer=payer, payer_msisdn="0" + payer[7:],
                        recipient=recipient, operator="Robi", number_type="1", amount=50, language="en")
    record, _ = await ledger.create(record)
    return await ledger.transition(record.id, RechargeState.REQUESTED, RechargeState.NEEDS_REVIEW, note, by="worker-1")


def ledger_of(stack: Stack) -> Ledger:
    return stack.app[LEDGER]
