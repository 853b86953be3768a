"""At most N predictions in flight for the account: a Redis semaphore with leases."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from .._clock import SYSTEM_CLOCK, Clock
from ._common import DEFAULT_PREFIX, REDIS_ERRORS, Outage, connect, guarded, logger, stop_task

__all__ = ["FleetSemaphore"]

# KEYS: the holders' sorted set (score: lease end, ms on Redis's clock).
# ARGV: limit, lease ms, token. Drops lapsed leases; takes a slot if one is free.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
  return 1
end
return 0
"""

# KEYS: the holders' set. ARGV: lease ms, tokens... Extends the leases still held;
# returns how many were lost (lapsed and dropped, or taken over).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lost = 0
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i]) == 0
     and not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    lost = lost + 1
  end
end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return lost
"""


class FleetSemaphore:
    """At most ``limit`` holders at once across every process sharing the Redis::

        budget = FleetSemaphore.from_url(url, limit=50)
        async with budget.slot():
            output = await client.run("owner/model", input=item)

    Each slot is a lease (``lease`` seconds, renewed every ``lease / 3`` while held), so
    a process that dies gives its slots back when their leases lapse. Waiters poll with
    jittered back-off (``poll_min`` .. ``poll_max`` seconds) and are woken at once by a
    release in their own process. If Redis is unreachable, this process falls back to a
    local semaphore of ``local_limit`` (default ``limit``) slots and logs one warning.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        limit: int,
        *,
        name: str = "predictions",
        lease: float = 30.0,
        prefix: str = DEFAULT_PREFIX,
        poll_min: float = 0.02,
        poll_max: float = 0.5,
        local_limit: int | None = None,
        operation_timeout: float = 0.5,
        clock: Clock = SYSTEM_CLOCK,
        close_redis: bool = False,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if not lease >= 0.1:
            raise ValueError("lease must be at least 0.1 seconds")
        self.limit = limit
        self._redis = redis
        self._close_redis = close_redis
        self._key = f"{prefix}:semaphore:{name}"
        self._lease_ms = round(lease * 1000)
        self._poll = (poll_min, poll_max)
        self._timeout = operation_timeout
        self._clock = clock
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._renew_script = redis.register_script(_RENEW)
        self._local = asyncio.Semaphore(local_limit or limit)
        self._held: set[str] = set()
        self._released = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None
        self._closing = False
        self._outage = Outage("limiting concurrency in this process only", clock)

    @classmethod
    def from_url(cls, url: str, limit: int, **options: Any) -> FleetSemaphore:
        """A semaphore with its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        return cls(connect(url), limit, close_redis=True, **options)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block."""
        token = await self.acquire()
        try:
            yield
        finally:
            await self.release(token)

    async def acquire(self) -> str:
        """Wait for a slot; the token to :meth:`release` it with."""
        delay = self._poll[0]
        while True:
            if self._outage.should_try():
                token = uuid.uuid4().hex
                try:
                    got = await guarded(
                        self._acquire_script(
                            keys=[self._key], args=[self.limit, self._lease_ms, token]
                        ),
                        self._timeout,
                    )
                except REDIS_ERRORS as exc:
                    self._outage.failed(exc)
                else:
                    self._outage.succeeded()
                    if got:
                        self._held.add(token)
                        self._ensure_renewer()
                        return token
            if self._outage.down:
                await self._local.acquire()
                return "local"
            self._released.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(random.uniform(delay / 2, delay)):
                    await self._released.wait()
            delay = min(delay * 2.0, self._poll[1])

    async def release(self, token: str) -> None:
        """Give a slot back (safe to call once per :meth:`acquire`)."""
        if token == "local":
            self._local.release()
        elif token in self._held:
            self._held.discard(token)
            with contextlib.suppress(*REDIS_ERRORS):
                await guarded(self._redis.zrem(self._key, token), self._timeout)
        self._released.set()

    @property
    def held(self) -> int:
        """Slots this process holds in Redis now."""
        return len(self._held)

    async def aclose(self) -> None:
        """Stop renewing and give back this process's slots."""
        renewer, self._renewer = self._renewer, None
        self._closing = True
        await stop_task(renewer)
        if self._held:
            with contextlib.suppress(*REDIS_ERRORS):
                await guarded(self._redis.zrem(self._key, *self._held), self._timeout)
            self._held.clear()
        if self._close_redis:
            await self._redis.aclose()

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while self._held and not self._closing:
            await self._clock.sleep(self._lease_ms / 3000)
            if not self._held:
                return
            try:
                lost = await guarded(
                    self._renew_script(keys=[self._key], args=[self._lease_ms, *self._held]),
                    self._timeout,
                )
            except REDIS_ERRORS as exc:
                self._outage.failed(exc)
                continue
            if lost:
                logger.warning("%d fleet semaphore leases lapsed before renewal", lost)
