"""The live USSD part of a recharge, through the callback route: one ledger record, queued,
nothing charged inside the USSD exchange."""
from __future__ import annotations

from server.app import LEDGER
from server.store.ledger import RechargeState
from server.sandbox.faults import FAULTS_KEY

from tests.conftest import start_stack

MASKED = "tel:B%3C4pbgsmXQ7Lk2iYp0aR1dZ"


async def test_confirmed_recharge_writes_one_queued_record_and_moves_no_money(aiohttp_server, store):
    stack = await start_stack(aiohttp_server, store=store)
    try:
        screen = await stack.dial("*217*1*01712345678*1*1*50#", MASKED)  # masked: "Another number" is 1
        assert "Recharge" in screen["message"] or "রিচার্জ" in screen["message"]
        screen = await stack.reply(screen, "1")
        assert screen["ussdOperation"] == "mt-fin"
        assert screen["message"] == "আপনার রিচার্জ অনুরোধ প্রক্রিয়াধীন। আপনি একটি SMS পাবেন।"
        ledger = stack.app[LEDGER]
        [record] = await ledger.list()
        assert record.state == RechargeState.REQUESTED
        assert (record.payer, record.payer_msisdn, record.recipient) == (MASKED, None, "01712345678")
        assert (record.operator, record.number_type, record.amount, record.language) == (
            "Grameenphone", "Prepaid", "50", "bn")
        assert record.external_trx_id and record.refid
        assert record.id in await ledger.queued()
        calls = [c["endpoint"] for c in stack.gateway[FAULTS_KEY].calls]
        assert not any(c.startswith("/caas") for c in calls)  # no debit inside the USSD exchange
    finally:
        await stack.http.close()
