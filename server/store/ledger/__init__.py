"""The recharge ledger: one durable record per money request, its history, and the work queue.

A record is written (state REQUESTED, with BOTH money keys, the CAAS `externalTrxId` and the
eCare `refid`, already generated) before anything else happens, and every later step writes
its new state before the outbound call it announces. A retry of a call reuses the key that is
in the record, so repeating any step can never move money twice (money moves only with an
identifier written to the ledger before the call: docs/recharge.md).

States (the saga in server/recharge/saga.py drives them; docs/recharge.md for operators):

    REQUESTED ──▶ DEBITING ──▶ DEBITED ──▶ RECHARGING ──▶ SUBMITTED ──▶ COMPLETED
        │             │                        │              │
        ▼             ├──▶ FAILED_NOT_CHARGED  ├──▶ REFUND_REQUIRED ◀──┤
    FAILED_NOT_CHARGED└──▶ NEEDS_REVIEW        └──▶ NEEDS_REVIEW  ◀────┘
                                   REFUND_REQUIRED / NEEDS_REVIEW ──(operator)──▶ RESOLVED

`transition()` is a compare-and-set on the current state (and on the record's version, so
two writers never interleave a read-modify-write) that appends a timestamped history entry.
`update()` is the same compare-and-set without a history entry, for counters and schedules
inside one state (retry counts, the next MRCSTATUS poll, receipts sent). Both take an optional
`lease`: the write is then fenced, made only while that lease is live and ours, in the same
atomic step as the compare-and-set (the Redis script reads the lease key), else LeaseLost and
nothing is written. The saga fences every write it makes under a worker's lease.

The queue: records due for work, by due time. `claim()` hands due records out under a lease
(one key per record, with an expiry), so several workers never work one record at once and a
crashed worker's records come back when its leases expire (or at once when a worker with the
same id starts again: `resume()`). A record leaves the queue only when it is final and its
SMS receipts are out. `resume()` also puts back any non-final record that is missing from the
queue (a crash between `create()` and `enqueue()`).

Backends: memory (one process: `alap dev` without Redis, tests) and Redis next to the store
(same client, same prefix). Redis keys all carry the hash tag `{ledger}` so that every script
touches one slot (Redis Cluster puts the whole ledger on one node):

    {prefix}{ledger}:r:<id>        hash: data (record JSON), state, v (version)
    {prefix}{ledger}:k:<key>       idempotency key -> id
    {prefix}{ledger}:x:<trx id>    externalTrxId -> id (uniqueness)
    {prefix}{ledger}:f:<refid>     refid -> id (uniqueness)
    {prefix}{ledger}:s:<STATE>     sorted set of ids in that state (score: created_at)
    {prefix}{ledger}:all           sorted set of every id (score: created_at)
    {prefix}{ledger}:q             the work queue: sorted set id -> due time (epoch seconds)
    {prefix}{ledger}:l:<id>        the lease: "<worker id>|<token>", expires (PX)

Nothing in the ledger expires: these are money records (docs/recharge.md, persistence).
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from .base import Ledger
from .memory import MemoryLedger
from .records import (ACTIVE_STATES, ATTENTION_STATES, FINAL_STATES, HistoryEntry, LeaseLost, RechargeLease, RechargeRecord,
                      RechargeState, StateConflict, decode_record, encode_record, new_record, new_record_id)
from .redis import RedisLedger

if TYPE_CHECKING:
    from ..base import Store

_memory_ledgers: "weakref.WeakKeyDictionary[Any, MemoryLedger]" = weakref.WeakKeyDictionary()
_redis_ledgers: "weakref.WeakKeyDictionary[Any, RedisLedger]" = weakref.WeakKeyDictionary()


def open_ledger(store: Store | None) -> Ledger:
    """The ledger next to a store: Redis (the store's client and prefix) for a RedisStore, else
    one in-process ledger per store object (so an action and an in-process worker share it)."""
    client = getattr(store, "redis", None)
    if client is not None:
        ledger = _redis_ledgers.get(store)
        if ledger is None:
            ledger = _redis_ledgers[store] = RedisLedger(client, getattr(store, "prefix", "alap:"))
        return ledger
    if store is None:
        return MemoryLedger()
    ledger = _memory_ledgers.get(store)
    if ledger is None:
        ledger = _memory_ledgers[store] = MemoryLedger()
    return ledger


__all__ = [
    "ACTIVE_STATES", "ATTENTION_STATES", "FINAL_STATES", "HistoryEntry", "LeaseLost", "Ledger", "RechargeLease",
    "MemoryLedger",
    "RechargeRecord", "RechargeState", "RedisLedger", "StateConflict", "decode_record", "encode_record",
    "new_record", "new_record_id", "open_ledger",
]
