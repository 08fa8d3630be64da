"""In-process store for `alap dev` and tests: same semantics as Redis, one process only.

Entries expire like Redis keys: read as absent once their time has passed, and swept out every
`SWEEP_EVERY` seconds (on the next write), so a long `alap dev` run keeps only live entries.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable

from .base import (DEDUPE_TTL, LOCK_TTL, PROFILE_TTL, Profile, ResumeKey, SessionLease, Store, decode_profile,
                   encode_profile)
from .funnel import RETENTION_DAYS, FunnelHop, days_back, today
from .versions import MemoryVersions

SWEEP_EVERY = 30.0  # seconds between sweeps of expired entries

DONE = "done"  # a committed request (see server/store/base.py); otherwise the owning token


class _Expiring(dict):
    """key -> (value, expires_at on the store's clock)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self.clock = clock

    def get_live(self, key: str):
        item = self.get(key)
        if item is None:
            return None
        value, expires = item
        if expires < self.clock():
            del self[key]
            return None
        return value

    def put(self, key: str, value, ttl: float) -> None:
        self[key] = (value, self.clock() + ttl)

    def keep_ttl(self, key: str, value) -> None:
        """Change the value, keep the expiry (Redis SET ... KEEPTTL)."""
        item = self.get(key)
        if item is not None:
            self[key] = (value, item[1])

    def sweep(self, now: float) -> None:
        for key in [k for k, (_, expires) in self.items() if expires < now]:
            del self[key]


class MemoryStore(Store):
    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.sessions = _Expiring(clock)
        self.owners = _Expiring(clock)
        self.locks = _Expiring(clock)
        self.seen = _Expiring(clock)
        self.profiles = _Expiring(clock)
        self.open: dict[str, tuple[float, bool]] = {}  # session -> (expires, answered)
        self.funnels: dict[tuple[str, str], Counter] = {}  # (flow, day) -> counters (funnel.py)
        self.waiting: dict[str, tuple[str, str, str]] = {}  # open session -> (flow, day, state)
        self.live = _Expiring(clock)  # subscriber -> their open session id
        self.resumes = _Expiring(clock)  # ResumeKey -> the session's data
        self.versions = MemoryVersions(self)
        self._next_sweep = clock() + SWEEP_EVERY

    def _sweep(self) -> None:
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY
        for entries in (self.sessions, self.owners, self.locks, self.seen, self.profiles, self.live, self.resumes):
            entries.sweep(now)

    def _profile(self, address: str | None) -> Profile | None:
        return decode_profile(self.profiles.get_live(address)) if address is not None else None

    def _foreign(self, session_id: str, owner: str | None) -> bool:
        current = self.owners.get_live(session_id)
        return owner is not None and current is not None and current != owner

    async def _claim(self, session_id, request_id, token, owner, profile_of, resume_of):
        self._sweep()
        if self._foreign(session_id, owner):
            return "foreign", None, None, None
        key = f"{session_id}\x00{request_id}"
        seen = self.seen.get_live(key)
        if seen == DONE:
            return "duplicate", None, None, None
        self.seen.put(key, token, DEDUPE_TTL)  # this delivery owns the request now
        holder = self.locks.get_live(session_id)
        if holder is not None and holder != seen:
            return "busy", None, None, None
        self.locks.put(session_id, token, LOCK_TTL)
        resume = self.resumes.get_live(resume_of) if resume_of is not None else None
        return "ok", self.sessions.get_live(session_id), self._profile(profile_of), resume

    async def _lock(self, session_id, token, request_id, owner, profile_of):
        if request_id and self.seen.get_live(f"{session_id}\x00{request_id}") != token:
            return "superseded", None, None
        if self._foreign(session_id, owner):
            return "foreign", None, None
        if self.locks.get_live(session_id) is not None:
            return "busy", None, None
        self.locks.put(session_id, token, LOCK_TTL)
        return "ok", self.sessions.get_live(session_id), self._profile(profile_of)

    async def _commit(self, lease: SessionLease, session, ttl, answered, funnel=None, resume=None):
        self._sweep()
        sid = lease.session_id
        seen_key = f"{sid}\x00{lease.request_id}"
        if lease.request_id and self.seen.get_live(seen_key) != lease.token:
            return "superseded"
        if self.locks.get_live(sid) != lease.token:
            return "lost"
        if session is None:
            self.sessions.pop(sid, None)
            self.owners.pop(sid, None)
            self.open.pop(sid, None)
            self.waiting.pop(sid, None)
        else:
            self.sessions.put(sid, session, ttl)
            if lease.owner:
                self.owners.put(sid, lease.owner, ttl)
            if answered is not None:
                self.open[sid] = (self.clock() + ttl, answered)
        del self.locks[sid]
        if lease.request_id:
            self.seen.keep_ttl(seen_key, DONE)
        if funnel is not None:
            self._count(sid, funnel, tracked=answered is not None and session is not None)
        if resume is not None:
            if resume.data is None:
                self.resumes.pop(resume.key, None)
            else:
                self.resumes.put(resume.key, resume.data, resume.ttl)
        return "saved"

    async def _release(self, lease: SessionLease):
        sid = lease.session_id
        if lease.request_id:
            seen_key = f"{sid}\x00{lease.request_id}"
            if self.seen.get_live(seen_key) != lease.token:
                return "superseded"
            self.seen.keep_ttl(seen_key, DONE)
        if self.locks.get_live(sid) == lease.token:
            del self.locks[sid]
        return "released"

    # -- funnel (server/store/funnel.py) ---------------------------------------------------------
    def _count(self, session_id: str, funnel: FunnelHop, tracked: bool) -> None:
        for flow, name in funnel.increments:
            self._funnel(flow, funnel.day)[name] += 1
        if tracked and funnel.waiting_in is not None:
            flow, state = funnel.waiting_in
            self.waiting[session_id] = (flow, funnel.day, state)
            self.live.put(funnel.subscriber, session_id, self.open[session_id][0] - self.clock())
        else:
            self.waiting.pop(session_id, None)
            if self.live.get_live(funnel.subscriber) == session_id:
                del self.live[funnel.subscriber]

    async def live_session(self, subscriber: str) -> str | None:
        return self.live.get_live(subscriber)

    def _funnel(self, flow: str, day: str) -> Counter:
        if (flow, day) not in self.funnels:
            kept = set(days_back(today(), RETENTION_DAYS + 1))
            for key in [k for k in self.funnels if k[1] not in kept]:
                del self.funnels[key]
            self.funnels[(flow, day)] = Counter()
        return self.funnels[(flow, day)]

    async def _funnel_hashes(self, flow, days):
        return [dict(self.funnels.get((flow, day), {})) for day in days]

    async def _get_profile(self, address):
        return self.profiles.get_live(address)

    async def _set_profile(self, address, data):
        self.profiles.put(address, data, PROFILE_TTL)

    async def _merge_profile(self, address, changes):
        profile = decode_profile(self.profiles.get_live(address))
        for name, value in changes.items():
            setattr(profile, name, value)
        self.profiles.put(address, encode_profile(profile), PROFILE_TTL)

    async def get_resume(self, key: ResumeKey):
        return self.resumes.get_live(key)

    async def get_session(self, session_id):
        return self.sessions.get_live(session_id)

    async def count_active(self) -> int:
        now = self.clock()
        return sum(1 for expires, _ in self.open.values() if expires > now)

    async def sweep_expired(self) -> tuple[int, int]:
        now = self.clock()
        gone = [(sid, answered) for sid, (expires, answered) in self.open.items() if expires <= now]
        for sid, _ in gone:
            del self.open[sid]
            waiting = self.waiting.pop(sid, None)
            if waiting is not None:
                flow, day, state = waiting
                counters = self._funnel(flow, day)
                counters["abandoned"] += 1
                counters[f"a:{state}"] += 1
        abandoned = sum(1 for _, answered in gone if answered)
        return len(gone) - abandoned, abandoned

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
