"""One store interface, a memory and a Redis backend (the aiogram FSM-storage pattern).

Every hop runs lock-then-load-then-save under a per-session lock:

    claim()    check the owner, dedupe the requestId, take the lock, load       (1 round trip)
    acquire()  when claim() found the lock busy: wait for it, then load
    commit()   save (or delete) the session, mark the request done, unlock    (1 round trip)

The dedupe record of a request says who owns it: the claim token of its latest delivery until
the hop is committed, then a done mark. Only a done request makes a redelivery a duplicate. A redelivery of a
request that is not done (its first claim's answer may never have arrived, so the gateway was
told 503 and nobody is working on it) takes the hop over: new token, and the lock too when
the old delivery held it. The old delivery, if it was alive after all, learns at its commit
(or while waiting for the lock) that it was superseded (`HopSuperseded`) and sends nothing, so
a hop gets exactly one screen.

The lock lives `LOCK_TTL` seconds at most, below the USSD budget, so a crashed process never
blocks a session for longer than a subscriber would wait anyway; `SessionLease.expires_at` tells the
turn when its lock runs out. A session belongs to the subscriber whose address started it
(`owner`): a claim from any other address is refused ('foreign') and changes nothing.
Sessions are opaque bytes here (the engine owns their JSON); subscriber profiles are small
versioned JSON records keyed by the subscriber address, outlive sessions, and are changed
field by field (`update_profile`), so two channels changing different fields both win.

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
from typing import TYPE_CHECKING, Literal, NamedTuple

import msgspec

from .funnel import FunnelCounts, FunnelHop

if TYPE_CHECKING:
    from .versions import VersionStore

LOCK_TTL = 5.0  # seconds; a turn must finish inside it (SessionLease.turn_deadline), below the USSD budget
SAVE_ROOM = 1.0  # seconds a lease keeps for its commit: one round trip (the Redis socket timeout)
LOCK_WAIT = 4.5  # how long a second hop of one session waits for the first
DEDUPE_TTL = 600  # seconds a requestId is remembered (the gateway redelivers within minutes)
PROFILE_TTL = 400 * 86400  # a profile outlives sessions; refreshed on every write


class StoreUnavailable(Exception):
    """The backend cannot be reached. Callers answer with a temporary error, never a 500."""


class LockTimeout(Exception):
    """Another hop of the same session held the lock for longer than LOCK_WAIT."""


class HopSuperseded(Exception):
    """A redelivery of the same request took the hop over: this delivery sends nothing."""


class ForeignSession(Exception):
    """The session belongs to another subscriber address: the hop is refused."""


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


class ResumeKey(NamedTuple):
    """Where a dropped session waits to be resumed: a dict key in memory, a Redis key's parts."""

    subscriber: str
    service: str


@dataclass(frozen=True)
class ResumeWrite:
    key: ResumeKey
    data: bytes | None  # None forgets the record
    ttl: int


@dataclass
class SessionLease:
    """The right to change one session until commit() or LOCK_TTL."""

    session_id: str
    token: str
    session: bytes | None
    profile: Profile | None = None
    request_id: str | None = None  # the delivery this lease serves: commit() marks it done
    owner: str | None = None  # the subscriber address the session belongs to
    # time.monotonic() when the lock runs out at the latest (measured from before the request
    # that took it was sent), so the turn can finish and save before it does.
    expires_at: float = float("inf")
    resume: bytes | None = None  # the resume record claim() was asked to read, if any

    @property
    def turn_deadline(self) -> float:
        """time.monotonic() by which the turn must be done, leaving SAVE_ROOM to commit."""
        return self.expires_at - SAVE_ROOM


@dataclass
class Claim:
    status: Literal["ok", "duplicate", "busy", "foreign"]
    lease: SessionLease | None = None  # 'ok': held
    pending: SessionLease | None = None  # 'busy': not held yet, pass it to acquire()


class Store(ABC):
    name = "abstract"
    versions: "VersionStore"  # published flow versions (store/versions.py), set by each backend

    # -- hop protocol -----------------------------------------------------------------------
    async def claim(self, session_id: str, request_id: str, *, owner: str | None = None,
                    profile_of: str | None = None, resume_of: ResumeKey | None = None) -> Claim:
        """Mark this delivery of `request_id` as the hop's owner and try to take the session
        lock, in one step.

        'foreign': `owner` is given and the session belongs to another address (nothing
        happened). 'duplicate': the request was committed before (nothing happened). 'busy':
        this delivery owns the hop, but another hop holds the lock: call acquire(). 'ok': the
        lease is held and the session (and profile and resume record, when asked) loaded.
        """
        token = secrets.token_hex(8)
        started = time.monotonic()
        status, session, profile, resume = await self._claim(session_id, request_id, token, owner, profile_of,
                                                             resume_of)
        if status == "ok":
            return Claim("ok", SessionLease(session_id, token, session, profile, request_id, owner,
                                            started + LOCK_TTL, resume))
        if status == "busy":  # acquire() takes the lock under the same token
            return Claim("busy", pending=SessionLease(session_id, token, None, None, request_id, owner))
        return Claim(status)  # type: ignore[arg-type]

    async def acquire(self, session_id: str, *, pending: SessionLease | None = None, profile_of: str | None = None,
                      wait: float = LOCK_WAIT) -> SessionLease:
        """Wait for the session lock (polling with backoff), then load. `pending` is the lease a
        'busy' claim returned: its delivery must still own the request (else HopSuperseded)
        and its owner the session (else ForeignSession)."""
        token = pending.token if pending else secrets.token_hex(8)
        request_id = pending.request_id if pending else None
        owner = pending.owner if pending else None
        deadline = time.monotonic() + wait
        delay = 0.002
        while True:
            started = time.monotonic()
            status, session, profile = await self._lock(session_id, token, request_id, owner, profile_of)
            if status == "ok":
                return SessionLease(session_id, token, session, profile, request_id, owner, started + LOCK_TTL)
            if status == "superseded":
                raise HopSuperseded(session_id)
            if status == "foreign":
                raise ForeignSession(session_id)
            if time.monotonic() >= deadline:
                raise LockTimeout(session_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def commit(self, lease: SessionLease, session: bytes | None, ttl: int, *, answered: bool | None = None,
                     funnel: FunnelHop | None = None, resume: ResumeWrite | None = None) -> bool:
        """Save the session (None deletes it), mark the lease's request done and release the
        lock. False when the lock had expired (nothing was written); HopSuperseded when a
        redelivery of the request took the hop over (nothing was written: it sends the screen).

        `answered` (USSD sessions only) also keeps the session in the open-sessions index:
        whether the subscriber has replied at least once tells an abandoned session from one
        that timed out on its first screen (see `sweep_expired`).

        `funnel` (server/store/funnel.py) is added to the day's funnel counters in the same step,
        only when the session is saved. `resume` writes or forgets a resume record in the same
        round trip, only when the session is saved (a commit that lost its lock leaves no stale
        record behind)."""
        outcome = await self._commit(lease, session, ttl, answered, funnel, resume)
        if outcome == "superseded":
            raise HopSuperseded(lease.session_id)
        return outcome == "saved"

    async def release(self, lease: SessionLease) -> None:
        """Give the lock back without writing and mark the request done (a hop that answers
        without a new state). HopSuperseded as for commit()."""
        if await self._release(lease) == "superseded":
            raise HopSuperseded(lease.session_id)

    # -- profiles ---------------------------------------------------------------------------
    async def get_profile(self, address: str) -> Profile:
        return decode_profile(await self._get_profile(address))

    async def get_profiles(self, addresses: list[str]) -> list[Profile]:
        """Many profiles at once (a broadcast checks opt-outs a batch at a time)."""
        return [decode_profile(data) for data in await self._get_profiles(addresses)]

    async def _get_profiles(self, addresses: list[str]) -> list[bytes | None]:
        return [await self._get_profile(a) for a in addresses]

    async def set_profile(self, address: str, profile: Profile) -> None:
        """Replace the whole profile (seeding, tests). Turns use update_profile()."""
        await self._set_profile(address, encode_profile(profile))

    async def update_profile(self, address: str, *, lang: str | None = None, opted_out: bool | None = None) -> None:
        """Change only the given fields, in one step: a concurrent change of another field
        (an SMS STOP while a USSD turn changes the language) survives."""
        changes: dict[str, object] = {}
        if lang is not None:
            changes["lang"] = lang
        if opted_out is not None:
            changes["opted_out"] = opted_out
        if changes:
            await self._merge_profile(address, changes)

    # -- backend primitives -----------------------------------------------------------------
    # _claim: ('ok' | 'busy' | 'duplicate' | 'foreign', session, profile, resume record)
    # _lock: ('ok' | 'busy' | 'superseded' | 'foreign', session, profile)
    # _commit: 'saved' | 'lost' | 'superseded';  _release: 'released' | 'superseded'
    @abstractmethod
    async def _claim(self, session_id: str, request_id: str, token: str, owner: str | None, profile_of: str | None,
                     resume_of: ResumeKey | None) -> tuple[str, bytes | None, Profile | None, bytes | None]: ...

    @abstractmethod
    async def _lock(self, session_id: str, token: str, request_id: str | None, owner: str | None,
                    profile_of: str | None) -> tuple[str, bytes | None, Profile | None]: ...

    @abstractmethod
    async def _commit(self, lease: SessionLease, session: bytes | None, ttl: int, answered: bool | None,
                      funnel: FunnelHop | None = None, resume: ResumeWrite | None = None) -> str: ...

    @abstractmethod
    async def _release(self, lease: SessionLease) -> str: ...

    @abstractmethod
    async def _get_profile(self, address: str) -> bytes | None: ...

    @abstractmethod
    async def _set_profile(self, address: str, data: bytes) -> None: ...

    @abstractmethod
    async def _merge_profile(self, address: str, changes: dict[str, object]) -> None: ...

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
        once across processes: (timed out on the first screen, abandoned after a reply). Each is
        also counted as abandoned at its state in the funnel of the day of its last hop."""

    async def funnel(self, flow: str, days: list[str]) -> FunnelCounts:
        """A flow's funnel counters summed over `days` (YYYYMMDD)."""
        return FunnelCounts.from_fields(await self._funnel_hashes(flow, days))

    @abstractmethod
    async def live_session(self, subscriber: str) -> str | None:
        """The id of the subscriber's open USSD session, if any (kept by commits with a funnel)."""

    @abstractmethod
    async def _funnel_hashes(self, flow: str, days: list[str]) -> list[dict]: ...

    @abstractmethod
    async def ping(self) -> bool: ...

    @abstractmethod
    async def close(self) -> None: ...
