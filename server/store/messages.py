"""The outbound message log: every SMS Alap sent (or holds back), its provider ids and status.

One record per message, keyed by our own id; an index from (provider, provider message id) to
it so a delivery report (BDApps `/bdapps/sms/report`, DiniSoft `getstatus`) finds it; two
queues:

- parked: messages waiting for a not-before time (BDApps E1319, the per-day limit, or every
  route temporarily down). `take_due()` hands due ones out under a lease, so two processes
  flushing at once never send one message twice and a crash mid-flush only delays it;
- pending: per provider, accepted messages whose final state is not known yet (for polling
  providers that send no reports, i.e. DiniSoft), least recently checked first.

Records are short-lived (`ttl`, 7 days by default, refreshed on every write); a parked record
lives at least `ttl` past its not-before time. The text of a message is kept only while it is
parked (it is needed to send it later) and dropped once it has been handed to a provider.

Status words from BDApps (DELIVERED, EXPIRED, DELETED, UNDELIVERABLE, ACCEPTED, UNKNOWN,
REJECTED) and SMPP (DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD) normalise
to one `MessageStatus`. A final state is never replaced by a non-final one (reports may arrive
out of order).
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from enum import Enum

import msgspec
import structlog

log = structlog.get_logger("alap.messages")

MESSAGE_TTL = 7 * 86400  # seconds a message record (and its provider-id index) is kept


class MessageStatus(str, Enum):
    # Delivery states (BDApps' enum; SMPP spellings normalise to these).
    ACCEPTED = "ACCEPTED"  # a provider took it; no final report yet
    DELIVERED = "DELIVERED"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    UNDELIVERABLE = "UNDELIVERABLE"
    UNKNOWN = "UNKNOWN"  # also ours: a send timed out and the message may or may not have gone
    REJECTED = "REJECTED"
    # Ours.
    PARKED = "PARKED"  # waiting for its not-before time (per-day limit, every route down)
    FAILED = "FAILED"  # no route accepted it and retrying cannot help
    OPTED_OUT = "OPTED_OUT"  # not sent: the subscriber opted out (never stored, only returned)


FINAL_STATUSES = frozenset({
    MessageStatus.DELIVERED, MessageStatus.EXPIRED, MessageStatus.DELETED, MessageStatus.UNDELIVERABLE,
    MessageStatus.REJECTED, MessageStatus.FAILED, MessageStatus.OPTED_OUT,
})

_STATUS_WORDS: dict[str, MessageStatus] = {
    # BDApps -> application
    "DELIVERED": MessageStatus.DELIVERED, "EXPIRED": MessageStatus.EXPIRED, "DELETED": MessageStatus.DELETED,
    "UNDELIVERABLE": MessageStatus.UNDELIVERABLE, "ACCEPTED": MessageStatus.ACCEPTED,
    "UNKNOWN": MessageStatus.UNKNOWN, "REJECTED": MessageStatus.REJECTED,
    # SMPP gateway spellings
    "DELIVRD": MessageStatus.DELIVERED, "UNDELIV": MessageStatus.UNDELIVERABLE,
    "ACCEPTD": MessageStatus.ACCEPTED, "REJECTD": MessageStatus.REJECTED, "ENROUTE": MessageStatus.ACCEPTED,
    # SMS gateways (AamarSMS /smsstatus, DiniSoft getstatus)
    "PENDING": MessageStatus.ACCEPTED, "SENT": MessageStatus.ACCEPTED, "FAILED": MessageStatus.UNDELIVERABLE,
}


def normalize_status(text: str) -> MessageStatus | None:
    """One enum for every spelling ("DELIVRD", " delivered ", "UNDELIV"...); None if unknown."""
    return _STATUS_WORDS.get("".join(str(text).split()).upper())


class MessageRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    to: str  # the address as the caller gave it (masked BDApps ids included)
    kind: str  # reply | notice | otp | receipt
    status: MessageStatus
    created_at: float
    updated_at: float
    route: str | None = None  # provider that accepted it (or was last tried)
    message_ids: tuple[str, ...] = ()  # provider message ids
    request_id: str | None = None  # BDApps requestId (delivery reports carry it)
    parts: int = 0
    provider_status: str | None = None  # the provider's own last word ("DELIVRD", "E1319"...)
    code: str | None = None  # last failure code
    detail: str | None = None
    text: str | None = None  # only while PARKED
    not_before: float | None = None  # only while PARKED
    reply_to_request: bool = False
    attempts: int = 0  # send attempts over the message's life (parks included)
    sent_at: float | None = None
    final_at: float | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def provider_ids(self) -> tuple[str, ...]:
        ids = list(self.message_ids)
        if self.request_id and self.request_id not in ids:
            ids.append(self.request_id)
        return tuple(ids)


encode_message = msgspec.json.encode
_decoder = msgspec.json.Decoder(MessageRecord)


def decode_message(data: bytes | None) -> MessageRecord | None:
    if not data:
        return None
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def is_pending(record: MessageRecord) -> bool:
    return record.status is MessageStatus.ACCEPTED and bool(record.route) and bool(record.message_ids)


class MessageLog(ABC):
    """Message records, their provider-id index, the parked queue and the pending sets."""

    name = "abstract"

    def __init__(self, ttl: int = MESSAGE_TTL) -> None:
        self.ttl = ttl

    # -- records ---------------------------------------------------------------------------
    @abstractmethod
    async def save(self, record: MessageRecord) -> None:
        """Insert or replace a record; index its provider ids; keep the pending set in step."""

    @abstractmethod
    async def get(self, message_id: str) -> MessageRecord | None:
        """A record by our own id."""

    @abstractmethod
    async def _lookup(self, provider: str, provider_message_id: str) -> str | None:
        """Our id for a provider's message id (or BDApps requestId)."""

    async def find(self, provider: str, provider_message_id: str) -> MessageRecord | None:
        our_id = await self._lookup(provider, provider_message_id.strip())
        return await self.get(our_id) if our_id else None

    async def update_status(self, provider: str, provider_message_id: str, status_text: str, *,
                            at: float | None = None) -> bool:
        """Apply a delivery report. False when the id is unknown (the caller acks and logs it).

        The status is normalised (DELIVERED / DELIVRD ...); an unrecognised word is stored
        verbatim as `provider_status` with status UNKNOWN. A final state is kept when a
        non-final one arrives later.
        """
        record = await self.find(provider, provider_message_id)
        if record is None:
            return False
        status = normalize_status(status_text)
        if status is None:
            log.warning("sms_status_unrecognised", provider=provider, provider_message_id=provider_message_id,
                        status=str(status_text)[:40])
            status = MessageStatus.UNKNOWN
        now = at if at is not None else time.time()
        if record.final and status not in FINAL_STATUSES:
            log.info("sms_status_stale", id=record.id, kept=record.status.value, got=status.value)
            return True
        record.status = status
        record.provider_status = str(status_text).strip()[:40]
        record.updated_at = now
        if status in FINAL_STATUSES:
            record.final_at = now
        await self.save(record)
        return True

    # -- pending (for polling) --------------------------------------------------------------
    @abstractmethod
    async def pending(self, provider: str, limit: int = 100) -> list[MessageRecord]:
        """Accepted messages of `provider` with no final state, least recently checked first."""

    @abstractmethod
    async def checked(self, provider: str, message_id: str, at: float) -> None:
        """Move a still-pending message to the back of the polling order."""

    # -- parked queue -----------------------------------------------------------------------
    # save() keeps the queue in step with the record: a PARKED record is queued at its
    # not-before time, any other status takes it out (in the same round trip).
    async def park(self, record: MessageRecord, not_before: float, *, now: float | None = None) -> None:
        """Hold a message until `not_before` (wall-clock seconds). The record keeps its text."""
        record.status = MessageStatus.PARKED
        record.not_before = not_before
        record.updated_at = now if now is not None else time.time()
        await self.save(record)

    @abstractmethod
    async def take_due(self, now: float, limit: int = 100, *, lease: float = 300.0) -> list[MessageRecord]:
        """Parked messages whose time has come, each leased for `lease` seconds: a second
        caller does not get them until then. Call `unpark()` once handled, or `park()` again."""

    @abstractmethod
    async def unpark(self, message_id: str) -> None: ...

    @abstractmethod
    async def parked_count(self) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    def _record_ttl(self, record: MessageRecord) -> int:
        ttl = self.ttl
        if record.status is MessageStatus.PARKED and record.not_before:
            ttl = max(ttl, int(record.not_before - time.time()) + self.ttl)
        return max(ttl, 1)

__all__ = [
    "FINAL_STATUSES", "MESSAGE_TTL", "MessageLog", "MessageRecord", "MessageStatus", "decode_message",
    "encode_message", "is_pending", "normalize_status",
]
