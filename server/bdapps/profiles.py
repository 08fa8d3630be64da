"""Profile changes a turn asks for (language, SMS opt-out), shared by the USSD and SMS paths."""
from __future__ import annotations

from ..engine.engine import Reply
from ..store import Store


async def apply_profile_changes(store: Store, key: str, reply: Reply) -> None:
    if reply.language is None and reply.opted_out is None:
        return
    profile = await store.get_profile(key)
    if reply.language is not None:
        profile.lang = reply.language
    if reply.opted_out is not None:
        profile.opted_out = reply.opted_out
    await store.set_profile(key, profile)
