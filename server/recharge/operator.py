"""`alap ledger`: the operator's view of the recharge ledger (docs/recharge.md).

    alap ledger [--state STATE] [--limit N] [--json]   records, newest first, + counts per state
    alap ledger show ID [--json]                        one record and its history
    alap ledger resolve ID --note TEXT [--by NAME]      REFUND_REQUIRED / NEEDS_REVIEW -> RESOLVED
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence, TextIO

import msgspec

from server.store.ledger import ATTENTION_STATES, Ledger, RechargeRecord, RechargeState, StateConflict

DHAKA = timezone(timedelta(hours=6), "Asia/Dhaka")


def _when(at: float | None, seconds: bool = False) -> str:
    if not at:
        return "-"
    return datetime.fromtimestamp(at, DHAKA).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _short(text: str | None, width: int) -> str:
    text = (text or "-").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table (the last column is not padded)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(widths[i]) if i < len(cells) - 1 else c for i, c in enumerate(cells)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def list_table(records: Sequence[RechargeRecord]) -> str:
    rows = [[r.id, r.state.value, _when(r.created_at), r.amount, r.recipient, _short(r.operator, 12),
             _short(r.payer, 22), _short(r.reason or "", 22), _short(r.note, 60)] for r in records]
    return table(["ID", "STATE", "CREATED (DHAKA)", "TAKA", "RECIPIENT", "OPERATOR", "PAYER", "REASON", "LAST NOTE"],
                 rows)


def show_text(record: RechargeRecord) -> str:
    attention = ""
    if record.state is RechargeState.REFUND_REQUIRED:
        attention = ("\n  ACTION: refund Tk {0} to {1} through the CAAS/partner refund process, then\n"
                     "          alap ledger resolve {2} --note 'refunded: <reference>'").format(
                         record.amount, record.payer, record.id)
    elif record.state is RechargeState.NEEDS_REVIEW:
        attention = ("\n  ACTION: check the debit (externalTrxId) with BDApps and the recharge (refid) with eCare,\n"
                     "          settle it, then alap ledger resolve {0} --note '<what was found and done>'").format(
                         record.id)
    fields = [
        ("state", record.state.value + (f" (reason {record.reason})" if record.reason else "")),
        ("payer", record.payer + (f" ({record.payer_msisdn})" if record.payer_msisdn else "")),
        ("recipient", f"{record.recipient}  operator {record.operator}  number type {record.number_type}"),
        ("amount", f"Tk {record.amount}  language {record.language}"),
        ("CAAS externalTrxId", record.external_trx_id + (f"  internalTrxId {record.caas_trx_id}"
                                                         if record.caas_trx_id else "  (no confirmed debit)")),
        ("eCare refid", record.refid + (f"  TrxID {record.ecare_trx_id}" if record.ecare_trx_id else "")
         + (f"  last MRCSTATUS {record.ecare_status}" if record.ecare_status else "")),
        ("idempotency key", record.idempotency_key),
        ("counters", f"attempts {record.attempts}  debit unknown {record.debit_unknown}  "
                     f"MRC unknown {record.recharge_unknown}  polls {record.polls}"
                     + ("  MRC may have been sent" if record.recharge_maybe_sent else "")),
        ("receipts", ("sent" if record.receipts_done else "pending")
         + f"  payer: {record.payer_receipt or '-'}  recipient: {record.recipient_receipt or '-'}"),
        ("created / updated", f"{_when(record.created_at, True)} / {_when(record.updated_at, True)} (Dhaka)"),
    ]
    width = max(len(name) for name, _ in fields)
    head = "\n".join(f"  {name.ljust(width)}  {value}" for name, value in fields)
    history = table(["AT (DHAKA)", "STATE", "BY", "NOTE"],
                    [[_when(h.at, True), h.state.value, h.by or "-", h.note or "-"] for h in record.history])
    return f"Recharge {record.id}\n{head}{attention}\n\nHistory\n{history}"


def _as_json(record: RechargeRecord) -> dict[str, Any]:
    return msgspec.to_builtins(record)


async def ledger_command(ledger: Ledger, action: str, record_id: str | None = None, *, state: str | None = None,
                         limit: int = 50, note: str | None = None, by: str | None = None, as_json: bool = False,
                         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The body of `alap ledger`; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr

    def fail(message: str) -> int:
        print(f"alap: {message}", file=err)
        return 1

    if action == "list":
        if record_id:
            return fail("`alap ledger` lists; use `alap ledger show ID` for one record")
        wanted = None
        if state:
            try:
                wanted = RechargeState(state.strip().upper())
            except ValueError:
                return fail(f"unknown state {state!r} (one of {', '.join(s.value for s in RechargeState)})")
        records = await ledger.list(wanted, limit)
        if as_json:
            print(json.dumps([_as_json(r) for r in records], ensure_ascii=False), file=out)
            return 0
        print(list_table(records) if records else "(no records)", file=out)
        counts = await ledger.counts()
        summary = "  ".join(f"{s.value} {n}" for s, n in counts.items() if n)
        print(f"\n{sum(counts.values())} record(s): {summary or 'none'}", file=out)
        waiting = sum(counts[s] for s in ATTENTION_STATES)
        if waiting:
            print(f"{waiting} need an operator: alap ledger --state REFUND_REQUIRED / --state NEEDS_REVIEW",
                  file=out)
        return 0
    if not record_id:
        return fail(f"`alap ledger {action}` needs a record ID")
    record = await ledger.get(record_id)
    if record is None:
        return fail(f"no recharge {record_id!r} in the ledger")
    if action == "show":
        print(json.dumps(_as_json(record), ensure_ascii=False, indent=2) if as_json else show_text(record), file=out)
        return 0
    if action == "resolve":
        if not note or not note.strip():
            return fail("--note is required: say what was done (e.g. 'refunded via BDApps ticket 1234')")
        if record.state not in ATTENTION_STATES:
            return fail(f"recharge {record_id} is {record.state.value}; only REFUND_REQUIRED or NEEDS_REVIEW "
                        f"records are resolved")
        try:
            resolved = await ledger.resolve(record_id, note, by=f"operator:{by}" if by else "operator")
        except StateConflict as exc:
            return fail(str(exc))
        print(f"recharge {resolved.id}: {record.state.value} -> {resolved.state.value} ({note.strip()})", file=out)
        return 0
    return fail(f"unknown ledger action {action!r}")
