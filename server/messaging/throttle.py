"""A token bucket per route, with a brake for BDApps E1318 ("per-second limit exceeded").

`acquire()` waits for a token. `slow_down(hold)` takes every token away, grants none for `hold`
seconds and halves the rate; each later success (`speed_up()`) gives back a tenth of the
configured rate, so the sender settles just below the gateway's real limit instead of bouncing
off it.

BDApps' limit is per application, not per process: with `REDIS_URL` set, every process and
host (the `web` workers and `alap worker`) shares one bucket per route in Redis
(`SharedTokenBucket`, built by `open_bucket()`). It is a small Lua script rather than `limits`
or `aiolimiter`: aiolimiter keeps its bucket in process memory, and limits' Redis strategies
(fixed or moving windows) answer "allowed or not" only; neither has the E1318 brake (a hold
and a lowered rate that every process must see), and both would cost a round trip per retry
while waiting. The script is one round trip per send: it reserves the next token (the bucket
may go into debt) and answers how long to wait for it, measured on Redis' clock, so hosts
whose clocks differ still share one rate. When Redis cannot be reached the process falls back
to its own bucket: throttling is a courtesy to the gateway, and E1318 still brakes.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

log = structlog.get_logger("alap.messaging")


class TokenBucket:
    """The bucket of one process."""

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

    async def slow_down(self, hold: float) -> None:
        now = time.monotonic()
        if not self.unlimited:
            self._refill(now)
            self.rate = max(self.min_rate, self.rate / 2)
        self.tokens = 0.0
        self.updated = max(now, self.hold_until, now + hold)  # no refill during the hold
        self.hold_until = max(self.hold_until, now + hold)

    async def speed_up(self) -> None:
        if not self.unlimited and self.rate < self.base_rate:
            self._refill(time.monotonic())
            self.rate = min(self.base_rate, self.rate + self.base_rate / 10)


# The bucket's state is one hash: tokens (may be negative: reserved by waiting senders), ts
# (ms, when tokens was last brought up to date), rate (tokens/s, lowered by the brake), hold
# (ms, no token before then). Times are Redis' own (TIME). ARGV[1] base rate, ARGV[2] burst.
_STATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local base, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'rate', 'hold')
local rate = math.min(base, tonumber(s[3]) or base)
local tokens = tonumber(s[1]) or burst
local ts = tonumber(s[2]) or now
local hold = tonumber(s[4]) or 0
local function refill(upto)
  if upto > ts then tokens = math.min(burst, tokens + (upto - ts) * rate / 1000); ts = upto end
end
local function save(wait)
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts), 'rate', tostring(rate),
             'hold', tostring(hold))
  redis.call('PEXPIRE', KEYS[1], math.max(0, hold - now, wait) + 600000)
end
"""

# Reserve one token; answers the milliseconds to wait before using it.
_ACQUIRE = _STATE + """
local start = math.max(now, hold)
refill(start)
tokens = tokens - 1
local wait = start - now
if tokens < 0 then wait = wait + math.ceil(-tokens * 1000 / rate) end
save(wait)
return wait
"""

# The E1318 brake: ARGV[3] hold (ms), ARGV[4] lowest rate. Reservations already made stand.
_SLOW_DOWN = _STATE + """
refill(now)
rate = math.max(tonumber(ARGV[4]), rate / 2)
tokens = math.min(tokens, 0)
hold = math.max(hold, now + tonumber(ARGV[3]))
ts = math.max(ts, hold)
save(0)
return 0
"""

_SPEED_UP = _STATE + """
if rate < base then refill(now); rate = math.min(base, rate + base / 10); save(0) end
return 0
"""


class SharedTokenBucket:
    """The same bucket, shared by every process through one Redis hash (`key`)."""

    def __init__(self, client: Any, key: str, rate: float, burst: float = 1.0, *,
                 min_rate: float | None = None) -> None:
        self.key = key
        self.client = client
        self.local = TokenBucket(rate, burst, min_rate=min_rate)  # when Redis is unreachable
        self._acquire = client.register_script(_ACQUIRE)
        self._slow_down = client.register_script(_SLOW_DOWN)
        self._speed_up = client.register_script(_SPEED_UP)
        self._degraded = False

    @property
    def base_rate(self) -> float:
        return self.local.base_rate

    async def _run(self, script: Any, *extra: float) -> float | None:
        try:
            result = await script(keys=[self.key], args=[self.local.base_rate, self.local.burst, *extra])
        except Exception as exc:  # redis-py's errors, OSError, timeouts: use the local bucket
            if not self._degraded:
                log.warning("sms_throttle_local", key=self.key, error=type(exc).__name__)
                self._degraded = True
            return None
        if self._degraded:
            log.info("sms_throttle_shared_again", key=self.key)
            self._degraded = False
        return float(result)

    async def acquire(self) -> None:
        wait = await self._run(self._acquire)
        if wait is None:
            await self.local.acquire()
        elif wait > 0:
            await asyncio.sleep(wait / 1000)

    async def slow_down(self, hold: float) -> None:
        await self.local.slow_down(hold)
        await self._run(self._slow_down, int(hold * 1000), self.local.min_rate)

    async def speed_up(self) -> None:
        await self.local.speed_up()
        await self._run(self._speed_up)

    async def shared_rate(self) -> float | None:
        """The rate every process now uses (after brakes), as stored in Redis."""
        try:
            value = await self.client.hget(self.key, "rate")
        except Exception:
            return None
        return float(value) if value is not None else None


Bucket = TokenBucket | SharedTokenBucket


def open_bucket(route: str, rate: float, burst: float = 1.0, *, redis: Any = None, prefix: str = "alap:") -> Bucket:
    """The route's bucket: shared in Redis when there is one and a rate to share, else local."""
    if redis is None or rate <= 0:
        return TokenBucket(rate, burst)
    return SharedTokenBucket(redis, f"{prefix}sms-throttle:{route}", rate, burst)
