"""Profile changes a turn asks for (language, SMS opt-out), shared by the USSD and SMS paths."""
from __future__ import annotations

import structlog

from ..engine.engine import Reply
from ..store import Store, StoreUnavailable

log = structlog.get_logger("alap.profiles")


async def apply_profile_changes(store: Store, key: str, reply: Reply) -> None:
    """Called after the session was saved: a failure here is logged, never turned into an
    error screen (the subscriber's step has already happened)."""
    if reply.language is None and reply.opted_out is None:
        return
    try:
        profile = await store.get_profile(key)
        if reply.language is not None:
            profile.lang = reply.language
        if reply.opted_out is not None:
            profile.opted_out = reply.opted_out
        await store.set_profile(key, profile)
    except StoreUnavailable as exc:
        log.error("profile_update_failed", address=key, error=str(exc))
