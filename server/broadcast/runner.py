"""The broadcast loop shared by SMS and USSD: lease, crash recovery, batches, halts.

    runner = SmsBroadcastRunner(bstore, owner, ...)      # or UssdBroadcastRunner
    result = await runner.run("bill-reminder")           # RunResult: state, detail

One batch at a time, in FILE order: read `batch` recipients at the cursor, skip the ones that
already have a status (a batch cut short by a park or a crash), let the subclass send the rest
(`send_batch`), which writes the in-flight marker before any request (`self.begin`) and hands
back every outcome; then `finish` records them and moves the cursor in one step. A subclass
stops the broadcast by returning a `Halt` (per-day limit: PARKED until tomorrow; refused
credentials: STOPPED until the operator re-runs it).
"""
from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import msgspec
import structlog

from .store import (
    CANCELLED, DONE, LEASE_SECONDS, PARKED, STOPPED, Broadcast, BroadcastStore, LeaseLost, Spec, Status,
)

log = structlog.get_logger("alap.broadcast")

DEFAULT_BATCH = 100  # recipients per /sms/send request (and per progress step)
MAX_BATCH = 1000
ERROR_RETRY_SECONDS = 60.0  # a run that failed unexpectedly is due again after this
# E1318 (rate limit): the bucket holds this long, doubling at each E1318 in a row up to the
# maximum (ALAP_BROADCAST_E1318_HOLD sets the first hold; server/config.py).
RATE_LIMIT_HOLD, MAX_RATE_LIMIT_HOLD = 1.0, 30.0


def new_owner() -> str:
    """host:pid:random, so a restart on the same host can tell that the holder is gone."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_is_dead(owner: str) -> bool:
    """True only when `owner` ran on this host and its process no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Entry(msgspec.Struct, array_like=True, omit_defaults=True):
    """A stored recipient: the address, and the CSV row's columns when there are any."""

    address: str
    columns: dict[str, str] = {}


_entry_decoder = msgspec.json.Decoder(Entry)


def encode_entry(address: str, columns: dict[str, str] | None = None) -> str:
    if not columns:
        return address
    return msgspec.json.encode(Entry(address, columns)).decode()


def decode_entry(raw: str) -> Entry:
    return _entry_decoder.decode(raw) if raw.startswith("[") else Entry(raw)


@dataclass(frozen=True)
class Halt:
    state: str  # PARKED | STOPPED | CANCELLED
    detail: str = ""
    not_before: float | None = None


@dataclass
class BatchResult:
    outcomes: list[tuple[int, str]] = field(default_factory=list)
    reports: list[tuple[str, str, int]] = field(default_factory=list)  # (provider, message id, seq)
    slowed: int = 0
    halt: Halt | None = None


@dataclass(frozen=True)
class RunResult:
    state: str
    detail: str = ""
    not_before: float | None = None
    broadcast: Broadcast | None = None


class Busy(Exception):
    """Another live runner holds the broadcast."""


ProgressFn = Callable[[Broadcast], None]


class BroadcastRunner:
    def __init__(self, bstore: BroadcastStore, owner: str | None = None, *, batch: int = DEFAULT_BATCH,
                 lease: float = LEASE_SECONDS, clock: Callable[[], float] = time.time,
                 progress: ProgressFn | None = None, interrupted_state: str = STOPPED,
                 rate_limit_hold: float = RATE_LIMIT_HOLD) -> None:
        self.bstore = bstore
        self.owner = owner or new_owner()
        self.batch = max(1, min(MAX_BATCH, batch))
        self.lease = lease
        self.rate_limit_hold = rate_limit_hold
        self.clock = clock
        self.progress = progress
        self.interrupted_state = interrupted_state
        self.name = ""
        self._inflight: list[int] = []

    async def prepare(self, spec: Spec) -> None:
        """Per-run setup (templates, engine); subclasses override."""

    async def send_batch(self, spec: Spec, items: list[tuple[int, str]]) -> BatchResult:
        raise NotImplementedError

    async def send_to_all(self, spec: Spec) -> BatchResult:
        raise NotImplementedError("tel:all is an SMS broadcast through BDApps")

    async def begin(self, seqs: list[int]) -> bool:
        """Write the in-flight marker (and renew the lease) before the batch's first request:
        every recipient the batch may send to. False when the broadcast was cancelled (send
        nothing)."""
        self._inflight = list(seqs)
        return await self.renew()

    async def renew(self) -> bool:
        """Renew the lease, keeping the whole batch's marker (a later request of the batch must
        not drop the recipients an earlier one sent to). LeaseLost when another runner took over."""
        return await self.bstore.begin(self.name, self.owner, self._inflight, self.clock(), self.lease) != CANCELLED

    async def run(self, name: str, *, retry_unknown: bool = False) -> RunResult:
        self.name = name
        current = await self.bstore.get(name)
        if current is None:
            raise KeyError(name)
        steal = current.owner if current.owner and owner_is_dead(current.owner) else None
        b = await self.bstore.acquire(name, self.owner, self.clock(), self.lease, steal_from=steal,
                                      reopen=retry_unknown)
        if b is None:
            if current.state in (DONE, CANCELLED):
                return RunResult(current.state, current.detail, broadcast=current)
            raise Busy(current.owner)
        try:
            recovered = await self.bstore.recover(name, self.owner, self.clock())
            if recovered:
                log.warning("broadcast_inflight_unknown", broadcast=name, recipients=recovered)
            await self.prepare(b.spec)
            halt = await self._main_pass(b) if not b.spec.to_all else await self._to_all(b)
            if halt is None and retry_unknown and not b.spec.to_all:
                halt = await self._retry_unknown(b)
        except LeaseLost:
            log.warning("broadcast_lease_lost", broadcast=name, owner=self.owner)
            return RunResult("lost", "another runner took the broadcast over")
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Interrupted (Ctrl-C; SIGTERM in the worker): give the lease back so a re-run or
            # another worker continues; the in-flight marker stays for recover().
            await asyncio.shield(self._release(self.interrupted_state, "interrupted"))
            raise
        except Exception as exc:  # Redis gone, a bug: a worker tries again in a minute
            log.exception("broadcast_run_failed", broadcast=name)
            await asyncio.shield(self._release(PARKED, f"{type(exc).__name__}: {exc}"[:200],
                                               self.clock() + ERROR_RETRY_SECONDS))
            raise
        if halt is None:
            halt = Halt(DONE)
        await self._release(halt.state, halt.detail, halt.not_before)
        final = await self.bstore.get(name)
        log.info("broadcast_run_ended", broadcast=name, state=halt.state, detail=halt.detail)
        return RunResult(final.state if final else halt.state, halt.detail, halt.not_before, final)

    async def _release(self, state: str, detail: str = "", not_before: float | None = None) -> None:
        if state == PARKED and not_before is None:
            not_before = self.clock()  # given back by a stopping worker: due again at once
        try:
            await self.bstore.release(self.name, self.owner, state, self.clock(), not_before=not_before,
                                      detail=detail)
        except Exception:  # the lease runs out by itself
            log.exception("broadcast_release_failed", broadcast=self.name)

    async def _main_pass(self, b: Broadcast) -> Halt | None:
        cursor = (await self.bstore.get(self.name) or b).cursor
        while cursor < b.total:
            count = min(self.batch, b.total - cursor)
            entries = await self.bstore.entries(self.name, cursor, count)
            done = await self.bstore.statuses(self.name, cursor, len(entries))
            items = [(cursor + i, e) for i, e in enumerate(entries) if done[i] == "\0"]
            end = cursor + len(entries)
            halt = await self._step(b.spec, items, end)
            if halt is not None:
                return halt
            cursor = end
            if not entries:
                break
        return None

    async def _retry_unknown(self, b: Broadcast) -> Halt | None:
        seqs = await self.bstore.unknown_seqs(self.name)
        log.info("broadcast_retry_unknown", broadcast=self.name, recipients=len(seqs))
        for i in range(0, len(seqs), self.batch):
            chunk = seqs[i:i + self.batch]
            items = []
            for seq in chunk:  # unknowns are scattered: one read each (an operator's rare choice)
                items.append((seq, (await self.bstore.entries(self.name, seq, 1))[0]))
            halt = await self._step(b.spec, items, None)
            if halt is not None:
                return halt
        return None

    async def _to_all(self, b: Broadcast) -> Halt | None:
        if (await self.bstore.statuses(self.name, 0, 1)) != "\0":
            return None
        result = await self.send_to_all(b.spec)
        return await self._record(result, 1 if result.halt is None else None)

    async def _step(self, spec: Spec, items: list[tuple[int, str]], advance_to: int | None) -> Halt | None:
        result = await self.send_batch(spec, items) if items else BatchResult()
        return await self._record(result, advance_to if result.halt is None else None)

    async def _record(self, result: BatchResult, advance_to: int | None) -> Halt | None:
        await self.bstore.index_messages(self.name, result.reports)
        await self.bstore.finish(self.name, self.owner, result.outcomes, advance_to, self.clock(),
                                 slowed=result.slowed)
        if self.progress is not None:
            current = await self.bstore.get(self.name)
            if current is not None:
                self.progress(current)
        return result.halt


STATUS_OF_SENT = {  # server/store/messages.py MessageStatus of a SentMessage -> recipient status
    "ACCEPTED": Status.SENT, "PARKED": Status.DEFERRED, "UNKNOWN": Status.UNKNOWN, "FAILED": Status.FAILED,
    "OPTED_OUT": Status.OPTED_OUT,
}
