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

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from .._clock import SYSTEM_CLOCK, Clock
from .._core.throttle import RateLimiter, RequestKind, Throttle
from ._common import DEFAULT_PREFIX, AnyRedis, Link, Unavailable, connect, keyspace

__all__ = ["RedisRateLimiter"]

#: A request re-checks the shared hold after a wait at most this many times.
_MAX_RECHECKS = 4
#: What one response relaxes a learned create pace by: one showing spare tokens (the
#: bucket holds more than one: not a low-credit account any more), one without hints.
_DECAY_SPARE, _DECAY_PLAIN = 0.25, 0.9

# Shared by both scripts. KEYS[3]: the learned create pace (a hash: interval us).
# ARGV[1]: the configured interval (us), ARGV[2]: tau = (burst - 1) * interval (us).
# A learned interval slower than the configured one wins, with no burst.
_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local base = tonumber(ARGV[1])
local interval, tau = base, tonumber(ARGV[2])
local learned = tonumber(redis.call('HGET', KEYS[3], 'interval') or '0')
"""

# KEYS: the kind's TAT (theoretical arrival time, us), hold and learned keys.
# ARGV[3]: mode, ARGV[4]: slot (us), ARGV[5]: decay (a factor <= 1 for the learned pace:
# responses showing spare tokens since this process's last call). "reserve": take the
# next slot (after any hold). "recheck": a caller that waited for its slot takes a new one
# only if a hold now ends after that slot. Returns {microseconds to wait, the slot, the
# interval in use (us)}; Redis's clock throughout.
_ACQUIRE = (
    _PACE
    + """
local decay = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if learned > base and decay < 1 then
  learned = learned * decay
  if learned <= base then
    redis.call('DEL', KEYS[3])
  else
    redis.call('HSET', KEYS[3], 'interval', string.format('%.0f', learned))
  end
  tat = math.min(tat, now + math.max(learned, base))
end
if learned > base then interval, tau = learned, 0 end
local hold_end = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[3] == 'recheck' and hold_end <= tonumber(ARGV[4]) then return {0, ARGV[4], interval} end
local start = math.max(now, hold_end)
local allowed = math.max(start, tat - tau)
local new_tat = math.max(tat, start) + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.ceil((new_tat - now) / 1000) + 1000)
return {math.floor(allowed - now), string.format('%.0f', allowed), interval}
"""
)

# KEYS: TAT, hold and learned keys. ARGV[3]: hold (ms), ARGV[4]: a pace to learn (us, 0:
# none: only a create's Retry-After of 2 s or more, a low-credit account's sign),
# ARGV[5]: how long a learned pace lasts (ms). Holds the kind (never shortening a longer
# hold; the value is its end, us); learns that a token takes at least the Retry-After (as
# one process's throttle does); pushes the TAT so the pace resumes after the hold
# without a burst.
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
if r > base and r > learned then
  redis.call('HSET', KEYS[3], 'interval', string.format('%.0f', r))
  learned = r
end
if learned > base then
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  interval, tau = learned, 0
end
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

    Pass it to each client: ``AsyncReplicate(limiter=RedisRateLimiter.from_url(url))``
    (or use :class:`~replicate_async.redis.Fleet`). Every request first reserves the next
    slot of its kind in one Lua script (one round trip, atomic: a GCRA whose state is a
    single timestamp per kind, on Redis's clock), so the whole fleet stays under the
    account's limits: ``create_per_minute`` (600, burst ``create_burst`` 600),
    ``other_per_minute`` (3000, burst 3000) and ``prediction_get_per_minute`` for
    ``GET /v1/predictions/{id}`` (60,000, burst 60,000; polls have their own bucket on
    the live API). A request kind this limiter does not know counts as ``other``.

    A 429 seen by any process holds its kind fleet-wide for its ``Retry-After``
    (``default_hold`` when absent, at most ``max_hold``); the next reservation anywhere
    sees it, and a request already waiting re-checks it before it goes. A *create*'s
    ``Retry-After`` of 2 s or more is a low-credit account's sign (6 creates a minute,
    burst 1): the fleet then paces creates at one per ``Retry-After`` with no burst, as
    one process's throttle would. That pace decays as soon as responses show spare create
    tokens (``ratelimit-remaining >= 1``: the interval quarters per such response; 10 %
    per success without the header) and lapses ``learn_for`` seconds after the last 429.

    If Redis is unreachable (``operation_timeout`` per call; the outage is shared by every
    Redis piece of the process, see :class:`~replicate_async.redis._common.Link`),
    requests go through ``fallback`` (default: the client's in-process
    :class:`~replicate_async._core.throttle.Throttle` at ``local_share`` of the fleet rates) at
    once until a background probe sees Redis again; nothing blocks on Redis or is
    dropped. Keys start with ``{prefix}`` (one per Replicate account).
    """

    def __init__(
        self,
        redis: AnyRedis,
        *,
        create_per_minute: float = 600,
        other_per_minute: float = 3000,
        prediction_get_per_minute: float = 60_000,
        create_burst: int | None = None,
        other_burst: int | None = None,
        prediction_get_burst: int | None = None,
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
        rates = (create_per_minute, other_per_minute, prediction_get_per_minute)
        if not all(rate > 0 for rate in rates):
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
        space = keyspace(prefix)
        for kind, rate, burst in (
            ("create", create_per_minute, create_burst),
            ("other", other_per_minute, other_burst),
            ("prediction_get", prediction_get_per_minute, prediction_get_burst),
        ):
            interval = round(60_000_000 / rate)
            tau = (default_burst(rate, burst) - 1) * interval
            keys = [f"{space}:rate:{kind}:{part}" for part in ("tat", "hold", "learned")]
            self._params[kind] = (keys, interval, tau)
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._hold_script = redis.register_script(_HOLD)
        self._fallback: RateLimiter = fallback or Throttle(
            clock,
            create_per_minute=create_per_minute * local_share,
            other_per_minute=other_per_minute * local_share,
        )
        self._observe = getattr(self._fallback, "observe", None)
        self._link = Link.shared(redis, clock)
        self._pace_us = self._params["create"][1]  # the create pace last seen in Redis
        self._decay = 1.0  # to apply to that pace at the next create reservation
        #: Counters: requests that waited, used the local fallback, holds published.
        self.stats: dict[str, int] = {"waited": 0, "local": 0, "holds": 0}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisRateLimiter:
        """A limiter with its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        return cls(connect(url), close_redis=True, **options)

    def _kind(self, kind: str) -> str:
        return kind if kind in self._params else "other"

    async def acquire(self, kind: RequestKind) -> None:
        """Wait until a request of this kind may go, fleet-wide."""
        name = self._kind(kind)
        keys, interval, tau = self._params[name]
        mode, slot = "reserve", b"0"
        for _ in range(_MAX_RECHECKS):
            decay, self._decay = (self._decay, 1.0) if name == "create" else (1.0, self._decay)
            reply = await self._run(
                self._acquire_script, keys, [interval, tau, mode, slot, repr(decay)]
            )
            if reply is None:
                self.stats["local"] += 1
                await self._local(kind, self._fallback.acquire)
                return
            wait_us, slot = int(reply[0]), reply[1]
            if name == "create":
                self._pace_us = int(reply[2])
            if wait_us <= 0:
                return
            self.stats["waited"] += 1
            await self._clock.sleep(wait_us / 1_000_000)
            mode = "recheck"  # a 429 elsewhere may have set a hold while we waited

    async def on_rate_limited(self, kind: RequestKind, retry_after: float | None) -> None:
        """A 429 was seen: hold this kind fleet-wide for ``retry_after`` seconds (and, for
        a create told to wait 2 s or more, learn the slower pace)."""
        name = self._kind(kind)
        seconds = self._default_hold if retry_after is None else retry_after
        hold_ms = max(1, round(min(max(seconds, 0.0), self._max_hold) * 1000))
        keys, interval, tau = self._params[name]
        await self._local(kind, lambda k: self._fallback.on_rate_limited(k, retry_after))
        learn = retry_after is not None and retry_after >= 2 and name == "create"
        pace_us = round(min(retry_after or 0.0, self._max_hold) * 1e6) if learn else 0
        args = [interval, tau, hold_ms, pace_us, self._learn_ms]
        if await self._run(self._hold_script, keys, args) is not None:
            self.stats["holds"] += 1
            if learn:
                self._pace_us = max(self._pace_us, pace_us)

    async def _local(self, kind: RequestKind, call: Callable[[Any], Awaitable[None]]) -> None:
        """``call(kind)`` on the fallback; as ``other`` if the fallback does not know the
        kind (e.g. an in-process throttle without a ``prediction_get`` bucket)."""
        try:
            await call(kind)
        except KeyError:
            await call("other")

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a script; ``None`` when Redis is (or just turned out to be) unreachable."""
        try:
            return await self._link.call(lambda: script(keys=keys, args=args), self._timeout)
        except Unavailable:
            return None

    def observe(self, kind: RequestKind, remaining: int | None) -> None:
        """A response without a 429: a create showing spare tokens (or, with no hints, any
        success) relaxes a learned pace; keeps the local fallback in step while it limits."""
        if self._slow and kind == "create" and remaining != 0:
            self._decay *= _DECAY_SPARE if remaining is not None else _DECAY_PLAIN
        if self._link.down and self._observe is not None:
            with contextlib.suppress(KeyError):
                self._observe(kind, remaining)

    @property
    def using_redis(self) -> bool:
        """False while Redis is unreachable and the local fallback limits this process."""
        return not self._link.down

    @property
    def _slow(self) -> bool:
        return self._pace_us > self._params["create"][1]

    @property
    def learned_pace(self) -> float | None:
        """Seconds per create the fleet paced at when this process last asked, if slower
        than configured (a low-credit account), else ``None`` (no Redis call)."""
        return self._pace_us / 1e6 if self._slow else None

    async def aclose(self) -> None:
        """Close the fallback, and the Redis connection pool if this limiter made it."""
        await self._fallback.aclose()
        await self._link.release()
        if self._close_redis:
            await self._redis.aclose()


def default_burst(per_minute: float, burst: int | None) -> int:
    """``burst``, or a minute's worth of requests (Replicate's buckets hold that many: a
    fresh account's ``ratelimit-remaining`` starts at 599 for creates), at least 1."""
    if burst is not None:
        if burst < 1:
            raise ValueError("a burst must be at least 1")
        return burst
    return max(1, int(per_minute))
