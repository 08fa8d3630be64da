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
    try:  # only the changed fields: another channel may be changing the others right now
        await store.update_profile(key, lang=reply.language, opted_out=reply.opted_out)
    except StoreUnavailable as exc:
        log.error("profile_update_failed", address=key, error=str(exc))
