"""Admission control: at most `limit` hops in flight per worker process.

A hop is in flight from its claim until its screen was sent (or it gave up). Past the limit a
callback is refused at once with 503 E1603, before the claim, so nothing is stored and BDApps
redelivers it later: under overload a subscriber gets a fast refusal that BDApps retries
instead of an ack followed by a "service busy" screen or by nothing, and the hops already
accepted keep their latency (they do not queue behind work the worker cannot finish in time).

The default (48, `ALAP_MAX_HOPS_IN_FLIGHT`) is about what one worker core serves in 25 ms of
queueing (1,500-2,000 hops/s), with room above the shared benchmark's 32 users: a smaller
bound keeps accepted hops faster under overload (bench/overload.py), a larger one lets a
worker queue work it cannot finish in time.

The limit also sizes the pools a hop draws from (server/app.py): a hop's scripts share the
worker's one pipelined Redis connection (server/store/redis_line.py), and its other Redis calls
and its `/ussd/send` hold at most one connection each at a time, so with the Redis pool and the
send client's connector sized as `limit` plus a reserve for everything else, hops alone can
never exhaust either.
"""
from __future__ import annotations

import time

import structlog

from ..config import DEFAULT_MAX_HOPS_IN_FLIGHT

log = structlog.get_logger("alap.admission")

# Connections kept beyond the hop limit for what is not a hop: SMS turns and sends, pushes,
# /metrics and /healthz, the messaging jobs. The Redis pool waits (never fails) past its size.
RESERVED_CONNECTIONS = 16
_REPORT_EVERY = 1.0  # seconds: refusals are counted, and logged at most once per this


class Overloaded(Exception):
    """The worker has `limit` hops in flight: the callback is refused (503 E1603)."""


class HopGate:
    def __init__(self, limit: int = DEFAULT_MAX_HOPS_IN_FLIGHT) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0  # since start (tests, /metrics through the callbacks counter's 503s)
        self._unreported = 0
        self._reported_at = 0.0

    def enter(self) -> None:
        """Take a place or raise Overloaded. Pair every successful enter() with one leave()."""
        if self.in_flight >= self.limit:
            self.refused += 1
            self._unreported += 1
            now = time.monotonic()
            if now - self._reported_at >= _REPORT_EVERY:  # one line per second, not one per refusal
                log.warning("ussd_overloaded", refused=self._unreported, in_flight=self.in_flight, limit=self.limit)
                self._unreported, self._reported_at = 0, now
            raise Overloaded()
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
