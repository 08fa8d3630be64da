"""One store interface, a memory and a Redis backend (the aiogram FSM-storage pattern).

Every hop runs lock-then-load-then-save under a per-session lock:

    claim()    dedupe the requestId, take the session lock, load the session   (1 round trip)
    acquire()  when claim() found the lock busy: wait for it, then load
    commit()   save (or delete) the session and release the lock              (1 round trip)

The lock lives `LOCK_TTL` seconds at most, below the USSD budget, so a crashed process never
blocks a session for longer than a subscriber would wait anyway. Sessions are opaque bytes here
(the engine owns their JSON); subscriber profiles are small versioned JSON records keyed by
the subscriber address and outlive sessions.

Resume records (bdapps/resume.py): the last resumable screen of a subscriber's session of one
service, keyed by subscriber and service, read in the mo-init claim's round trip and written
(or forgotten) in the commit's round trip: resuming adds no round trip to a hop.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from .versions import VersionStore

LOCK_TTL = 5.0  # seconds; longer than the longest hop (action budget 4 s), below the USSD budget
LOCK_WAIT = 4.5  # how long a second hop of one session waits for the first
DEDUPE_TTL = 600  # seconds a requestId is remembered (the gateway redelivers within minutes)
PROFILE_TTL = 400 * 86400  # a profile outlives sessions; refreshed on every write


class StoreUnavailable(Exception):
    """The backend cannot be reached. Callers answer with a temporary error, never a 500."""


class LockTimeout(Exception):
    """Another hop of the same session held the lock for longer than LOCK_WAIT."""


class Profile(msgspec.Struct, kw_only=True, omit_defaults=True):
    v: int = 1
    lang: str | None = None
    opted_out: bool = False


_profile_decoder = msgspec.json.Decoder(Profile)


def encode_profile(profile: Profile) -> bytes:
    return msgspec.json.encode(profile)


def decode_profile(data: bytes | None) -> Profile:
    if not data:
        return Profile()
    try:
        return _profile_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Profile()


@dataclass(frozen=True)
class ResumeKey:
    subscriber: str
    service: str


@dataclass(frozen=True)
class ResumeWrite:
    key: ResumeKey
    data: bytes | None  # None forgets the record
    ttl: int


@dataclass
class Lease:
    """The right to change one session until commit() or LOCK_TTL."""

    session_id: str
    token: str
    session: bytes | None
    profile: Profile | None = None
    resume: bytes | None = None  # the resume record claim() was asked to read, if any


@dataclass
class Claim:
    status: Literal["ok", "duplicate", "busy"]
    lease: Lease | None = None


class Store(ABC):
    name = "abstract"
    versions: "VersionStore"  # published flow versions (store/versions.py), set by each backend

    # -- hop protocol -----------------------------------------------------------------------
    async def claim(self, session_id: str, request_id: str, *, profile_of: str | None = None,
                    resume_of: ResumeKey | None = None) -> Claim:
        """Mark `request_id` seen and try to take the session lock, in one step.

        'duplicate': the request was seen before (nothing else happened). 'busy': the request is
        now marked, but another hop holds the lock: call acquire(). 'ok': the lease is held and
        the session (and profile, when asked) loaded.
        """
        token = secrets.token_hex(8)
        status, session, profile, resume = await self._claim(session_id, request_id, token, profile_of, resume_of)
        if status != "ok":
            return Claim(status)
        return Claim("ok", Lease(session_id, token, session, profile, resume))

    async def acquire(self, session_id: str, *, profile_of: str | None = None, wait: float = LOCK_WAIT) -> Lease:
        """Wait for the session lock (polling with backoff), then load."""
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait
        delay = 0.002
        while True:
            locked, session, profile = await self._lock(session_id, token, profile_of)
            if locked:
                return Lease(session_id, token, session, profile)
            if time.monotonic() >= deadline:
                raise LockTimeout(session_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def commit(self, lease: Lease, session: bytes | None, ttl: int, *, answered: bool | None = None,
                     resume: ResumeWrite | None = None) -> bool:
        """Save the session (None deletes it) and release the lock. False when the lock had
        expired and was taken by someone else: nothing was written.

        `answered` (USSD sessions only) also keeps the session in the open-sessions index:
        whether the subscriber has replied at least once tells an abandoned session from one
        that timed out on its first screen (see `sweep_expired`). `resume` writes or forgets a
        resume record in the same round trip, only when the lock was held (a commit that lost
        its lock leaves no stale record behind)."""
        return await self._commit(lease.session_id, lease.token, session, ttl, answered, resume)

    async def release(self, lease: Lease) -> None:
        """Give the lock back without writing (a hop that failed before computing a state)."""
        await self._release(lease.session_id, lease.token)

    # -- profiles ---------------------------------------------------------------------------
    async def get_profile(self, address: str) -> Profile:
        return decode_profile(await self._get_profile(address))

    async def set_profile(self, address: str, profile: Profile) -> None:
        await self._set_profile(address, encode_profile(profile))

    # -- backend primitives -----------------------------------------------------------------
    @abstractmethod
    async def _claim(self, session_id: str, request_id: str, token: str, profile_of: str | None,
                     resume_of: ResumeKey | None) -> tuple[str, bytes | None, Profile | None, bytes | None]: ...

    @abstractmethod
    async def _lock(self, session_id: str, token: str,
                    profile_of: str | None) -> tuple[bool, bytes | None, Profile | None]: ...

    @abstractmethod
    async def _commit(self, session_id: str, token: str, session: bytes | None, ttl: int,
                      answered: bool | None, resume: ResumeWrite | None) -> bool: ...

    @abstractmethod
    async def _release(self, session_id: str, token: str) -> None: ...

    @abstractmethod
    async def _get_profile(self, address: str) -> bytes | None: ...

    @abstractmethod
    async def _set_profile(self, address: str, data: bytes) -> None: ...

    @abstractmethod
    async def get_resume(self, key: ResumeKey) -> bytes | None:
        """Read a resume record (inspection and tests)."""

    @abstractmethod
    async def get_session(self, session_id: str) -> bytes | None:
        """Read without locking (inspection and tests)."""

    @abstractmethod
    async def count_active(self) -> int:
        """Open USSD sessions across all processes."""

    @abstractmethod
    async def sweep_expired(self) -> tuple[int, int]:
        """Take the sessions that expired without a final screen out of the index, each exactly
        once across processes: (timed out on the first screen, abandoned after a reply)."""

    @abstractmethod
    async def ping(self) -> bool: ...

    @abstractmethod
    async def close(self) -> None: ...
