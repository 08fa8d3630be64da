"""A token bucket per route, with a brake for BDApps E1318 ("per-second limit exceeded").

`acquire()` waits for a token (callers are served in arrival order). `slow_down(hold)` takes
every token away, grants none for `hold` seconds and halves the rate; each later success
(`speed_up()`) gives back a tenth of the configured rate, so the sender settles just below
the gateway's real limit instead of bouncing off it.
"""
from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: float = 1.0, *, min_rate: float | None = None) -> None:
        """`rate` tokens per second (0 or less: unlimited), at most `burst` saved up."""
        self.base_rate = float(rate)
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self.min_rate = min_rate if min_rate is not None else max(self.base_rate / 8, 0.1)
        self.tokens = self.burst
        self.updated = time.monotonic()
        self.hold_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def unlimited(self) -> bool:
        return self.base_rate <= 0

    def _refill(self, now: float) -> None:
        if now <= self.updated:  # still inside a hold: nothing accrues
            return
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self) -> None:
        if self.unlimited and self.hold_until <= time.monotonic():
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.hold_until:
                    await asyncio.sleep(self.hold_until - now)
                    continue
                if self.unlimited:
                    return
                self._refill(now)
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self.tokens) / self.rate)

    def slow_down(self, hold: float) -> None:
        now = time.monotonic()
        if not self.unlimited:
            self._refill(now)
            self.rate = max(self.min_rate, self.rate / 2)
        self.tokens = 0.0
        self.updated = max(now, self.hold_until, now + hold)  # no refill during the hold
        self.hold_until = max(self.hold_until, now + hold)

    def speed_up(self) -> None:
        if not self.unlimited and self.rate < self.base_rate:
            self._refill(time.monotonic())
            self.rate = min(self.base_rate, self.rate + self.base_rate / 10)
