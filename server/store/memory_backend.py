"""In-process store for `alap dev` and tests: same semantics as Redis, one process only."""
from __future__ import annotations

import time
from collections import Counter

from .base import DEDUPE_TTL, LOCK_TTL, PROFILE_TTL, Profile, Store, decode_profile
from .funnel import RETENTION_DAYS, FunnelHop, days_back, today


class _Expiring(dict):
    """key -> (value, expires_at monotonic)."""

    def get_live(self, key: str):
        item = self.get(key)
        if item is None:
            return None
        value, expires = item
        if expires < time.monotonic():
            del self[key]
            return None
        return value

    def put(self, key: str, value, ttl: float) -> None:
        self[key] = (value, time.monotonic() + ttl)


class MemoryStore(Store):
    name = "memory"

    def __init__(self) -> None:
        self.sessions = _Expiring()
        self.locks = _Expiring()
        self.seen = _Expiring()
        self.profiles = _Expiring()
        self.open: dict[str, tuple[float, bool]] = {}  # session -> (expires, answered)
        self.funnels: dict[tuple[str, str], Counter] = {}  # (flow, day) -> counters (funnel.py)
        self.waiting: dict[str, tuple[str, str, str]] = {}  # open session -> (flow, day, state)
        self.live = _Expiring()  # subscriber -> their open session id

    def _profile(self, address: str | None) -> Profile | None:
        return decode_profile(self.profiles.get_live(address)) if address is not None else None

    def _take_lock(self, session_id: str, token: str) -> bool:
        if self.locks.get_live(session_id) is not None:
            return False
        self.locks.put(session_id, token, LOCK_TTL)
        return True

    async def _claim(self, session_id, request_id, token, profile_of):
        key = f"{session_id}\x00{request_id}"
        if self.seen.get_live(key) is not None:
            return "duplicate", None, None
        self.seen.put(key, True, DEDUPE_TTL)
        if not self._take_lock(session_id, token):
            return "busy", None, None
        return "ok", self.sessions.get_live(session_id), self._profile(profile_of)

    async def _lock(self, session_id, token, profile_of):
        if not self._take_lock(session_id, token):
            return False, None, None
        return True, self.sessions.get_live(session_id), self._profile(profile_of)

    async def _commit(self, session_id, token, session, ttl, answered, funnel=None):
        if self.locks.get_live(session_id) != token:
            return False
        if session is None:
            self.sessions.pop(session_id, None)
            self.open.pop(session_id, None)
            self.waiting.pop(session_id, None)
        else:
            self.sessions.put(session_id, session, ttl)
            if answered is not None:
                self.open[session_id] = (time.monotonic() + ttl, answered)
        del self.locks[session_id]
        if funnel is not None:
            self._count(session_id, funnel, tracked=answered is not None and session is not None)
        return True

    # -- funnel (server/store/funnel.py) ---------------------------------------------------------
    def _count(self, session_id: str, funnel: FunnelHop, tracked: bool) -> None:
        for flow, name in funnel.increments:
            self._funnel(flow, funnel.day)[name] += 1
        if tracked and funnel.waiting_in is not None:
            flow, state = funnel.waiting_in
            self.waiting[session_id] = (flow, funnel.day, state)
            self.live.put(funnel.subscriber, session_id, self.open[session_id][0] - time.monotonic())
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

    async def _release(self, session_id, token):
        if self.locks.get_live(session_id) == token:
            del self.locks[session_id]

    async def _get_profile(self, address):
        return self.profiles.get_live(address)

    async def _set_profile(self, address, data):
        self.profiles.put(address, data, PROFILE_TTL)

    async def get_session(self, session_id):
        return self.sessions.get_live(session_id)

    async def count_active(self) -> int:
        now = time.monotonic()
        return sum(1 for expires, _ in self.open.values() if expires > now)

    async def sweep_expired(self) -> tuple[int, int]:
        now = time.monotonic()
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
