"""A fleet-wide rate limit in Redis: one GCRA per request kind, and a shared 429 hold.

Why a Lua GCRA (``python -m benchmarks.redis_limiter``): every Redis-backed option costs one
round trip per request (a Lua token bucket, the ``limits`` library's fixed and moving
windows all measured within noise of each other, ~0.1-0.2 ms on loopback), so the choice is
by behaviour. The GCRA keeps one timestamp per kind and *reserves* a slot: the caller learns
at once how long to sleep, callers are served in arrival order, and nobody polls. The
yes/no strategies make a refused caller retry (more round trips exactly when the budget is
tight), and a fixed window lets twice the rate through across a window edge. The 429 hold
lives in the same script, so honouring it costs nothing extra.

A reservation is spent even if its caller is cancelled while it sleeps (the fleet then runs
slightly under budget, never over).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .._clock import SYSTEM_CLOCK, Clock
from .._throttle import RateLimiter, RequestKind, Throttle
from ._common import DEFAULT_PREFIX, REDIS_ERRORS, Outage, connect, guarded

__all__ = ["RedisRateLimiter"]

#: A request re-checks the shared hold after a wait at most this many times.
_MAX_RECHECKS = 4

# Shared by both scripts. KEYS[3]: the learned pace (a hash: interval us, stamp us).
# ARGV[1]: the configured interval (us), ARGV[2]: tau = (burst - 1) * interval (us).
# A learned interval slower than the configured one wins, with no burst.
_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local base = tonumber(ARGV[1])
local interval, tau = base, tonumber(ARGV[2])
local learned = tonumber(redis.call('HGET', KEYS[3], 'interval') or '0')
if learned > base then interval, tau = learned, 0 end
"""

# KEYS: the kind's TAT (theoretical arrival time, us), hold and learned keys.
# ARGV[3]: mode, ARGV[4]: slot (us). "reserve": take the next slot (after any hold).
# "recheck": a caller that waited for its slot takes a new one only if a hold now ends
# after that slot. Returns {microseconds to wait, the slot}; Redis's clock throughout.
_ACQUIRE = (
    _PACE
    + """
local hold_end = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[3] == 'recheck' and hold_end <= tonumber(ARGV[4]) then return {0, ARGV[4]} end
local start = math.max(now, hold_end)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local allowed = math.max(start, tat - tau)
local new_tat = math.max(tat, start) + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.ceil((new_tat - now) / 1000) + 1000)
return {math.floor(allowed - now), string.format('%.0f', allowed)}
"""
)

# KEYS: TAT, hold and learned keys. ARGV[3]: hold (ms), ARGV[4]: the 429's Retry-After
# (us, 0 if none), ARGV[5]: how long a learned pace lasts (ms), ARGV[6]: slowest pace (us).
# Holds the kind (never shortening a longer hold; the value is its end, us); learns from a
# Retry-After R of 2 s or more that the account is slower than configured (one token per
# R). A 429 at the learned pace L (one interval or more after the last lesson) means a
# token takes more than L + R - 1 s: the pace becomes that, and at least 10 % slower.
# Then pushes the TAT so the pace resumes after the hold without a burst.
_HOLD = (
    _PACE
    + """
local ms = tonumber(ARGV[3])
local hold_end = now + ms * 1000
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < hold_end then
  redis.call('SET', KEYS[2], string.format('%.0f', hold_end), 'PX', ms)
else
  hold_end = current
end
local r = tonumber(ARGV[4])
local new = learned
if r >= 2000000 and r > learned then new = r end
local stamp = tonumber(redis.call('HGET', KEYS[3], 'stamp') or '0')
if learned > base and r > 0 and now - stamp >= learned then
  new = math.max(new, learned * 1.1, learned + r - 1000000)
end
new = math.min(new, tonumber(ARGV[6]))
if new > base and new > learned then
  redis.call('HSET', KEYS[3], 'interval', string.format('%.0f', new),
             'stamp', string.format('%.0f', now))
  interval, tau = new, 0
end
if new > base then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
local floor = hold_end + tau
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < floor then
  redis.call('SET', KEYS[1], string.format('%.0f', floor), 'PX',
             math.ceil((floor - now) / 1000) + 1000)
end
return math.floor((hold_end - now) / 1000)
"""
)


class RedisRateLimiter:
    """A rate limiter shared by every process that points at the same Redis.

    Pass it to each client: ``AsyncReplicate(limiter=RedisRateLimiter.from_url(url))``.
    Every request first reserves the next slot of its kind in one Lua script (one round
    trip, atomic: a GCRA whose state is a single timestamp per kind, on Redis's clock),
    so the whole fleet stays under ``create_per_minute`` / ``other_per_minute``, with
    ``create_burst`` / ``other_burst`` at once (default: a second's worth). A 429 seen by
    any process sets a hold key with that ``Retry-After`` (``default_hold`` when absent,
    at most ``max_hold``); the next reservation anywhere sees it, and a request that was
    already waiting re-checks it before it goes. A ``Retry-After`` of 2 s or more shows
    the account is slower than configured (a low-credit account: 6 creates a minute,
    burst 1): the fleet then paces at one request per ``Retry-After`` with no burst
    (slower again while 429s go on), for ``learn_for`` seconds after the last 429.

    If Redis is unreachable (``operation_timeout`` per call), requests go through
    ``fallback`` (default: the client's in-process
    :class:`~replicate_async._throttle.Throttle` at ``local_share`` of the fleet rates),
    one warning is logged, Redis is retried with back-off, and nothing blocks on Redis or
    is dropped. Keys start with ``prefix`` (one per Replicate account).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        create_per_minute: float = 600,
        other_per_minute: float = 3000,
        create_burst: int | None = None,
        other_burst: int | None = None,
        prefix: str = DEFAULT_PREFIX,
        default_hold: float = 1.0,
        max_hold: float = 60.0,
        learn_for: float = 600.0,
        operation_timeout: float = 1.0,
        local_share: float = 1.0,
        fallback: RateLimiter | None = None,
        clock: Clock = SYSTEM_CLOCK,
        close_redis: bool = False,
    ) -> None:
        if not create_per_minute > 0 or not other_per_minute > 0:
            raise ValueError("rates must be positive numbers of requests per minute")
        if not 0 < local_share <= 1:
            raise ValueError("local_share must be in (0, 1]")
        if not operation_timeout > 0:
            raise ValueError("operation_timeout must be positive")
        self._redis = redis
        self._close_redis = close_redis
        self._clock = clock
        self._timeout = operation_timeout
        self._default_hold = default_hold
        self._max_hold = max_hold
        self._learn_ms = max(1, round(learn_for * 1000))
        self._params: dict[str, tuple[list[str], int, int]] = {}
        for kind, rate, burst in (
            ("create", create_per_minute, create_burst),
            ("other", other_per_minute, other_burst),
        ):
            interval = round(60_000_000 / rate)
            tau = (default_burst(rate, burst) - 1) * interval
            keys = [f"{prefix}:rate:{kind}:{part}" for part in ("tat", "hold", "learned")]
            self._params[kind] = (keys, interval, tau)
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._hold_script = redis.register_script(_HOLD)
        self._fallback: RateLimiter = fallback or Throttle(
            clock,
            create_per_minute=create_per_minute * local_share,
            other_per_minute=other_per_minute * local_share,
        )
        self._observe = getattr(self._fallback, "observe", None)
        self._outage = Outage("throttling in this process only until it is back", clock)
        #: Counters: requests that waited, used the local fallback, holds published.
        self.stats: dict[str, int] = {"waited": 0, "local": 0, "holds": 0}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisRateLimiter:
        """A limiter with its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        return cls(connect(url), close_redis=True, **options)

    async def acquire(self, kind: RequestKind) -> None:
        """Wait until a request of this kind may go, fleet-wide."""
        keys, interval, tau = self._params.get(kind) or self._params["other"]
        mode, slot = "reserve", b"0"
        for _ in range(_MAX_RECHECKS):
            reply = await self._run(self._acquire_script, keys, [interval, tau, mode, slot])
            if reply is None:
                self.stats["local"] += 1
                await self._fallback.acquire(kind)
                return
            wait_us, slot = int(reply[0]), reply[1]
            if wait_us <= 0:
                return
            self.stats["waited"] += 1
            await self._clock.sleep(wait_us / 1_000_000)
            mode = "recheck"  # a 429 elsewhere may have set a hold while we waited

    async def on_rate_limited(self, kind: RequestKind, retry_after: float | None) -> None:
        """A 429 was seen: hold this kind fleet-wide for ``retry_after`` seconds."""
        seconds = self._default_hold if retry_after is None else retry_after
        hold_ms = max(1, round(min(max(seconds, 0.0), self._max_hold) * 1000))
        keys, interval, tau = self._params.get(kind) or self._params["other"]
        await self._fallback.on_rate_limited(kind, retry_after)
        told_us = round(retry_after * 1_000_000) if retry_after is not None else 0
        args = [interval, tau, hold_ms, told_us, self._learn_ms, round(self._max_hold * 1e6)]
        if await self._run(self._hold_script, keys, args) is not None:
            self.stats["holds"] += 1

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a script; ``None`` when Redis is (or just turned out to be) unreachable."""
        if not self._outage.should_try():
            return None
        try:
            result = await guarded(script(keys=keys, args=args), self._timeout)
        except REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return None
        self._outage.succeeded()
        return result

    def observe(self, kind: RequestKind, remaining: int | None) -> None:
        """A response's ``ratelimit-remaining``: keeps the local fallback in step while it
        is the one limiting (the shared budget needs no hints)."""
        if self._outage.down and self._observe is not None:
            self._observe(kind, remaining)

    @property
    def using_redis(self) -> bool:
        """False while Redis is unreachable and the local fallback limits this process."""
        return not self._outage.down

    async def aclose(self) -> None:
        """Close the fallback, and the Redis connection pool if this limiter made it."""
        await self._fallback.aclose()
        if self._close_redis:
            await self._redis.aclose()


def default_burst(per_minute: float, burst: int | None) -> int:
    """``burst``, or a second's worth of requests (at least 1)."""
    if burst is not None:
        if burst < 1:
            raise ValueError("a burst must be at least 1")
        return burst
    return max(1, int(per_minute // 60))
