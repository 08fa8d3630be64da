"""`alap flows`: each flow's current version (from the flow folders, as `alap serve` here would
load them) and the older versions still live in the store, with how many open sessions run on
each. Read only; it never publishes or deletes anything."""
from __future__ import annotations

import json
from collections import Counter
from typing import TextIO

from ..actions import build_registry
from ..app import build_engine
from ..config import Settings
from ..engine.session import decode_session
from ..store import open_store
from ..upstreams import Upstreams


async def flows_report(settings: Settings, out: TextIO, *, as_json: bool = False) -> int:
    upstreams = Upstreams.from_settings(settings)  # only for the action names: opens no connection
    try:
        engine = build_engine(settings, build_registry(upstreams))
    finally:
        await upstreams.aclose()
    current = {name: rt.version for name, rt in engine.versions.current.items()}
    live: dict[tuple[str, str], float] = {}
    sessions: Counter[tuple[str, str]] = Counter()
    if settings.redis_url:
        store = open_store(settings.redis_url, settings.redis_prefix)
        try:
            live = await store.versions.live()
            async for data in store.versions.sessions():
                session = decode_session(data)
                if session is not None:
                    sessions.update(session.ver.items())
        finally:
            await store.close()
    rows = []
    for name in sorted(set(current) | {flow for flow, _ in live}):
        versions = {v for flow, v in live if flow == name} | ({current[name]} if name in current else set())
        ordered = sorted(versions, key=lambda v: (v != current.get(name), -live.get((name, v), 0)))
        for version in ordered:
            rows.append({"flow": name, "version": version, "current": version == current.get(name),
                         "sessions": sessions[(name, version)],
                         "expires_in": round(live[(name, version)]) if (name, version) in live else None})
    if as_json:
        print(json.dumps(rows, indent=2), file=out)
        return 0
    print(f"{'flow':<16} {'version':<14} {'sessions':>8}  state", file=out)
    for row in rows:
        if row["current"]:
            state = "current" + ("" if row["expires_in"] is not None or not settings.redis_url
                                 else " (not published yet: no `alap serve` has run it)")
        else:
            state = f"older, kept {row['expires_in']} s more"
        print(f"{row['flow']:<16} {row['version']:<14} {row['sessions']:>8}  {state}", file=out)
    if not settings.redis_url:
        print("(REDIS_URL is not set: only the current versions; live versions and sessions are in Redis)", file=out)
    return 0
