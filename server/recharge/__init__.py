"""Mobile recharge, money-safe (layer "payments").

This package may import integrations, store, messaging and render; only actions, the wiring
(app.py / dev.py) and the command line import it.

    from server.store.ledger import new_record, open_ledger
    ledger = open_ledger(store)
    record, created = await ledger.create(new_record(idempotency_key=..., payer=..., ...))
    await ledger.enqueue(record.id)          # `alap worker` takes it from here

    saga = RechargeSaga(ledger, caas, ecare, sms_sender, renderer, SagaPolicy.from_settings(settings))
    await saga.run(record.id)                # in-process (tests); the worker calls saga.step()

States, steps and the operator's part: docs/recharge.md.
"""
from __future__ import annotations

from .receipts import MSGIDS as RECEIPT_MSGIDS
from .receipts import Receipt, build_receipts
from server.store.ledger import LeaseLost

from .ecare_codes import ecare_operator, parse_number_type, parse_operator
from .lease_keeper import RechargeLeaseKeeper
from .saga import RechargeSaga
from .saga_policy import SagaPolicy
from .saga_steps import StepResult
from .worker import RechargeWorker, check_worker_settings, default_worker_id, run_worker

__all__ = [
    "RechargeLeaseKeeper", "LeaseLost", "RECEIPT_MSGIDS", "Receipt", "RechargeSaga", "RechargeWorker", "SagaPolicy",
    "StepResult", "build_receipts", "check_worker_settings", "default_worker_id", "ecare_operator", "parse_number_type",
    "parse_operator", "run_worker",
]
