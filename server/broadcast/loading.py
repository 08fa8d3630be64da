"""Creating a broadcast: the spec, its fingerprint, and the FILE copied into the store in
chunks (a worker on another host can then run it; memory stays flat for any file size)."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

from .recipients import TEL_ALL, BadLine, Recipient, read_recipients
from .runner import encode_entry
from .store import LOADING, READY, SCHEDULED, Broadcast, BroadcastStore, Spec

CHUNK = 1000  # recipients per write while loading
MAX_BAD_KEPT = 1000  # bad lines kept for `alap broadcast status` (all are printed while loading)
DHAKA_UTC_OFFSET = 6 * 3600  # Asia/Dhaka, no daylight saving time


class ScheduleError(ValueError):
    pass


def parse_at(text: str, now: float | None = None) -> float:
    """"YYYY-MM-DD HH:MM" (seconds allowed: "HH:MM:SS") in Asia/Dhaka -> epoch seconds; in the
    past -> ScheduleError."""
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            parsed = time.strptime(text.strip(), pattern)
            break
        except ValueError:
            continue
    else:
        raise ScheduleError(f"--at takes \"YYYY-MM-DD HH:MM\" (Asia/Dhaka time), got {text!r}") from None
    import calendar

    at = calendar.timegm(parsed) - DHAKA_UTC_OFFSET
    if at < (now if now is not None else time.time()) - 60:
        raise ScheduleError(f"--at {text!r} (Asia/Dhaka) is in the past")
    return float(at)


def format_dhaka(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at + DHAKA_UTC_OFFSET)) + " Asia/Dhaka"


def fingerprint(source: str, *parts: str) -> str:
    """sha256 of the FILE's bytes and of what is sent: re-running NAME must mean the same thing."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    if source != TEL_ALL:
        with open(source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Loaded:
    broadcast: Broadcast
    created: bool  # False: NAME existed (a re-run continues it)


BadLineFn = Callable[[BadLine], None]


async def create_broadcast(bstore: BroadcastStore, spec: Spec, *, on_bad_line: BadLineFn | None = None) -> Loaded:
    """Create NAME (or find it), loading its recipients when that has not been completed."""
    b = await bstore.create(spec)
    if b.state != LOADING:
        return Loaded(b, False)
    await bstore.restart_loading(spec.name)  # a load cut short: start it again (nothing was sent)
    total = invalid = 0
    if spec.to_all:
        await bstore.append(spec.name, [TEL_ALL], [])
        total = 1
    else:
        entries: list[str] = []
        bad: list[str] = []
        for item in read_recipients(spec.source):
            if isinstance(item, Recipient):
                entries.append(encode_entry(item.address, item.columns))
                total += 1
            else:
                invalid += 1
                if invalid <= MAX_BAD_KEPT:
                    bad.append(str(item))
                if on_bad_line is not None:
                    on_bad_line(item)
            if len(entries) >= CHUNK or len(bad) >= CHUNK:
                await bstore.append(spec.name, entries, bad)
                entries, bad = [], []
        await bstore.append(spec.name, entries, bad)
    scheduled = spec.at is not None and spec.at > time.time()
    await bstore.loaded(spec.name, total, invalid, SCHEDULED if scheduled else READY,
                        spec.at if scheduled else None)
    found = await bstore.get(spec.name)
    assert found is not None
    return Loaded(found, True)
