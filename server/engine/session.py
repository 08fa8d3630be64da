"""Session state as versioned JSON (msgspec): never pickle, readable in redis-cli."""
from __future__ import annotations

from typing import Any

import msgspec

SESSION_VERSION = 1


class Session(msgspec.Struct, kw_only=True):
    v: int = SESSION_VERSION
    flow: str
    state: str
    root: str | None = None  # the flow that was dialled; `00` returns to its start
    lang: str
    channel: str = "ussd"
    vars: dict[str, Any] = {}
    history: list[str] = []  # "flow:state" of the screens before this one, for `0`
    page: int = 0
    pages: int = 1
    retries: int = 0
    # [msgid, params] of an error notice on a paginated screen, so 98/0 page through the same
    # layout the notice made (server/render/screen.py); None otherwise.
    notice: list[Any] | None = None
    ver: dict[str, str] = {}  # flow -> the content id of the version this session runs (engine/versions.py)


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(Session)


def encode_session(session: Session) -> bytes:
    return _encoder.encode(session)


def decode_session(data: bytes | str | None) -> Session | None:
    """None for absent, unreadable or other-version data (treated as an expired session)."""
    if not data:
        return None
    try:
        session = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return session if session.v == SESSION_VERSION else None
