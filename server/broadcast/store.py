"""Where a broadcast's progress lives: one interface, a memory and a Redis backend (like
server/store/). Everything the "never twice" guarantee rests on is here.

A broadcast is its `Spec` (what to send, to whom: fixed at creation), its recipients (the
FILE's valid lines, copied into the store so a worker on another host can run it), one status
byte per recipient, counters, a cursor and a lease:

    create() + append() ... + loaded()     the recipients, streamed in chunks
    acquire(owner)                          one runner at a time (the lease expires: a crashed
                                            runner's broadcast is taken over)
    begin(owner, seqs, advance_to)          BEFORE a request: the in-flight marker
    finish(owner, outcomes, advance_to)     AFTER the answer: statuses, counters, cursor, marker
                                            cleared, all in one step
    recover()                               on (re)start: recipients of a marker left by a crash
                                            were maybe sent: they become UNKNOWN (never resent
                                            unless the operator asks with --retry-unknown)
    statuses()                              a batch re-read after a crash or a park skips every
                                            recipient that already has a status

Status bytes: see `Status`. Counters are kept per status; `Totals` derives the operator's view.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Iterable

import msgspec

LEASE_SECONDS = 10.0  # renewed before every request; a crashed runner's lease runs out this fast
REPORT_INDEX_TTL = 7 * 86400  # how long a delivery report can still be matched to a recipient


class Status(str, Enum):
    """One byte per recipient."""

    SENT = "S"  # accepted by the gateway, no final delivery report yet
    DELIVERED = "D"
    UNDELIVERED = "X"  # a final report said expired / undeliverable / rejected / deleted
    FAILED = "F"  # refused at send time (invalid number, ...): certainly not sent
    OPTED_OUT = "O"  # skipped: the subscriber texted STOP
    UNKNOWN = "U"  # maybe sent (timeout after the request was written, or a crash in flight)
    DEFERRED = "P"  # handed to the SMS sender, which parked it (it sends it later by itself)


STATUS_CODES = tuple(s.value for s in Status)

# Lifecycle states.
LOADING, SCHEDULED, READY, RUNNING, PARKED, DONE, CANCELLED, STOPPED = (
    "loading", "scheduled", "ready", "running", "parked", "done", "cancelled", "stopped")
ACTIVE_STATES = (SCHEDULED, READY, RUNNING, PARKED, STOPPED)


class Spec(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    kind: str  # "sms" | "ussd"
    route: str = "auto"  # auto | bdapps | aamarsms | dinisoft (USSD: bdapps)
    text: str | None = None  # SMS: the text or Jinja template
    flow: str | None = None  # USSD: the flow to start
    vars: dict[str, str] = {}
    lang: str | None = None
    to_all: bool = False  # "tel:all": one request to BDApps' whole subscribed base
    source: str = ""  # the FILE as given (for the operator)
    fingerprint: str = ""  # sha256 of FILE + text/flow: a re-run must match
    at: float | None = None  # scheduled start (epoch seconds)
    created_at: float = 0.0


class Broadcast(msgspec.Struct, kw_only=True):
    spec: Spec
    state: str
    total: int = 0  # valid recipients
    invalid: int = 0  # bad lines skipped
    cursor: int = 0  # recipients [0, cursor) are settled (or in the in-flight marker)
    counts: dict[str, int] = {}
    not_before: float | None = None  # scheduled / parked until
    detail: str = ""  # why it is parked or stopped
    slowed: int = 0  # E1318 answers met
    inflight: list[int] = []
    owner: str = ""
    lease_until: float = 0.0
    updated_at: float = 0.0

    @property
    def totals(self) -> "Totals":
        return Totals.of(self)


@dataclass(frozen=True)
class Totals:
    total: int
    queued: int  # not sent yet
    sent: int  # accepted by a gateway (delivered or not)
    delivered: int
    failed: int  # refused at send, or reported undelivered
    opted_out: int
    pending: int  # sent, no final delivery report yet (or parked by the SMS sender)
    unknown: int  # maybe sent: not resent without --retry-unknown
    invalid: int

    @classmethod
    def of(cls, b: Broadcast) -> "Totals":
        c = {code: b.counts.get(code, 0) for code in STATUS_CODES}
        sent = c["S"] + c["D"] + c["X"]
        return cls(total=b.total, queued=max(0, b.total - b.cursor) + len(b.inflight), sent=sent,
                   delivered=c["D"], failed=c["F"] + c["X"], opted_out=c["O"], pending=c["S"] + c["P"],
                   unknown=c["U"], invalid=b.invalid)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class LeaseLost(Exception):
    """Another runner holds the broadcast now: stop sending at once."""


class BroadcastExists(Exception):
    """A broadcast of that name exists with another FILE, text or flow."""


def report_status(word: str) -> Status | None:
    """A delivery report's word as a final recipient status; None for a non-final word."""
    from server.store.messages import MessageStatus, normalize_status

    status = normalize_status(word)
    if status is MessageStatus.DELIVERED:
        return Status.DELIVERED
    if status in (MessageStatus.EXPIRED, MessageStatus.DELETED, MessageStatus.UNDELIVERABLE,
                  MessageStatus.REJECTED):
        return Status.UNDELIVERED
    return None


_spec_decoder = msgspec.json.Decoder(Spec)


def encode_spec(spec: Spec) -> bytes:
    return msgspec.json.encode(spec)


def decode_spec(data: bytes | str) -> Spec:
    return _spec_decoder.decode(data)


class BroadcastStore(ABC):
    """Progress of every broadcast. Entries are opaque strings (an address, or JSON with the
    CSV columns); `seq` is a recipient's 0-based position."""

    name = "abstract"

    @abstractmethod
    async def create(self, spec: Spec) -> Broadcast:
        """Create in state LOADING, or return the existing one. Raises BroadcastExists when the
        name is taken by a broadcast with another fingerprint."""

    @abstractmethod
    async def append(self, name: str, entries: list[str], bad: list[str]) -> None:
        """Add recipients (in order) and bad-line reports while LOADING."""

    @abstractmethod
    async def loaded(self, name: str, total: int, invalid: int, state: str, not_before: float | None) -> None:
        """End of loading: READY or SCHEDULED."""

    @abstractmethod
    async def restart_loading(self, name: str) -> None:
        """A load cut short: drop what was appended (nothing was sent yet)."""

    @abstractmethod
    async def get(self, name: str) -> Broadcast | None: ...

    @abstractmethod
    async def names(self) -> list[str]:
        """Every broadcast, oldest first."""

    @abstractmethod
    async def bad_lines(self, name: str, limit: int = 100) -> list[str]: ...

    @abstractmethod
    async def entries(self, name: str, start: int, count: int) -> list[str]: ...

    @abstractmethod
    async def statuses(self, name: str, start: int, count: int) -> str:
        """The status bytes of recipients [start, start+count); "\\0" where none yet."""

    # -- running ----------------------------------------------------------------------------
    @abstractmethod
    async def acquire(self, name: str, owner: str, now: float, lease: float = LEASE_SECONDS,
                      *, steal_from: str | None = None, reopen: bool = False) -> Broadcast | None:
        """Take the lease (free, expired, ours, or held by `steal_from`, a runner known dead)
        and set state RUNNING. None when another runner holds it or it is final/loading
        (`reopen`: a DONE broadcast may be taken again, for --retry-unknown)."""

    @abstractmethod
    async def begin(self, name: str, owner: str, seqs: list[int], now: float, lease: float = LEASE_SECONDS) -> str:
        """Write the in-flight marker and renew the lease. Returns the state (CANCELLED: send
        nothing). Raises LeaseLost."""

    @abstractmethod
    async def finish(self, name: str, owner: str, outcomes: Iterable[tuple[int, str]], advance_to: int | None,
                     now: float, *, slowed: int = 0) -> None:
        """Record outcomes (seq, status byte), move the cursor, clear the marker. LeaseLost
        when the lease was taken (the new holder has turned our marker into UNKNOWN)."""

    @abstractmethod
    async def release(self, name: str, owner: str, state: str, now: float, *,
                      not_before: float | None = None, detail: str = "") -> None:
        """Give the lease back, leaving the broadcast DONE, PARKED (until not_before) or STOPPED."""

    @abstractmethod
    async def cancel(self, name: str, now: float) -> bool: ...

    @abstractmethod
    async def due(self, now: float, limit: int = 10) -> list[str]:
        """Broadcasts a worker should run now: scheduled or parked whose time has come, and
        running ones whose lease ran out (their runner died)."""

    # -- delivery reports -------------------------------------------------------------------
    @abstractmethod
    async def index_messages(self, name: str, items: list[tuple[str, str, int]]) -> None:
        """(provider, provider message id, seq) so a delivery report finds its recipient."""

    @abstractmethod
    async def report(self, provider: str, message_id: str, status: Status | None) -> bool:
        """Apply a final delivery report (None: a non-final one, nothing changes). False when
        the id is not a broadcast's."""

    @abstractmethod
    async def close(self) -> None: ...

    # -- shared logic -----------------------------------------------------------------------
    async def recover(self, name: str, owner: str, now: float) -> int:
        """Turn a crashed runner's in-flight recipients that have no status into UNKNOWN and
        move the cursor past them. Returns how many were marked."""
        b = await self.get(name)
        if b is None or not b.inflight:
            return 0
        low = min(b.inflight)
        known = await self.statuses(name, low, max(b.inflight) - low + 1)
        unsettled = [seq for seq in b.inflight if known[seq - low] == "\0"]
        # The cursor stays: the batch is read again and its recipients with a status skipped.
        await self.finish(name, owner, [(s, Status.UNKNOWN.value) for s in unsettled], None, now)
        return len(unsettled)

    async def unknown_seqs(self, name: str, chunk: int = 65536) -> list[int]:
        """Recipients whose outcome is unknown (for --retry-unknown)."""
        b = await self.get(name)
        found: list[int] = []
        if b is None:
            return found
        for start in range(0, b.total, chunk):
            data = await self.statuses(name, start, min(chunk, b.total - start))
            found.extend(start + i for i, ch in enumerate(data) if ch == Status.UNKNOWN.value)
        return found

