"""In-process store for `alap dev` and tests: same semantics as Redis, one process only."""
from __future__ import annotations

import time

from .base import DEDUPE_TTL, LOCK_TTL, PROFILE_TTL, Profile, ResumeKey, Store, decode_profile
from .versions import MemoryVersions


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
        self.resumes = _Expiring()  # ResumeKey -> the session's data
        self.versions = MemoryVersions(self)

    def _profile(self, address: str | None) -> Profile | None:
        return decode_profile(self.profiles.get_live(address)) if address is not None else None

    def _take_lock(self, session_id: str, token: str) -> bool:
        if self.locks.get_live(session_id) is not None:
            return False
        self.locks.put(session_id, token, LOCK_TTL)
        return True

    async def _claim(self, session_id, request_id, token, profile_of, resume_of):
        key = f"{session_id}\x00{request_id}"
        if self.seen.get_live(key) is not None:
            return "duplicate", None, None, None
        self.seen.put(key, True, DEDUPE_TTL)
        if not self._take_lock(session_id, token):
            return "busy", None, None, None
        resume = self.resumes.get_live(resume_of) if resume_of is not None else None
        return "ok", self.sessions.get_live(session_id), self._profile(profile_of), resume

    async def _lock(self, session_id, token, profile_of):
        if not self._take_lock(session_id, token):
            return False, None, None
        return True, self.sessions.get_live(session_id), self._profile(profile_of)

    async def _commit(self, session_id, token, session, ttl, answered, resume):
        if self.locks.get_live(session_id) != token:
            return False
        if resume is not None:
            if resume.data is None:
                self.resumes.pop(resume.key, None)
            else:
                self.resumes.put(resume.key, resume.data, resume.ttl)
        if session is None:
            self.sessions.pop(session_id, None)
            self.open.pop(session_id, None)
        else:
            self.sessions.put(session_id, session, ttl)
            if answered is not None:
                self.open[session_id] = (time.monotonic() + ttl, answered)
        del self.locks[session_id]
        return True

    async def _release(self, session_id, token):
        if self.locks.get_live(session_id) == token:
            del self.locks[session_id]

    async def _get_profile(self, address):
        return self.profiles.get_live(address)

    async def _set_profile(self, address, data):
        self.profiles.put(address, data, PROFILE_TTL)

    async def get_resume(self, key: ResumeKey):
        return self.resumes.get_live(key)

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
        abandoned = sum(1 for _, answered in gone if answered)
        return len(gone) - abandoned, abandoned

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
