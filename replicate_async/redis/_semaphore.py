"""At most N predictions in flight for the account: a Redis semaphore with leases."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from .._clock import SYSTEM_CLOCK, Clock
from ._common import (
    DEFAULT_PREFIX,
    AnyRedis,
    Link,
    Unavailable,
    connect,
    keyspace,
    logger,
    stop_task,
    text,
)

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

# KEYS: the holders' set, its marker (exists while holders renew). ARGV: lease ms,
# tokens... Extends the leases still held and returns the tokens lost (lapsed and dropped,
# so maybe taken over). Without the marker Redis lost its data (restarted empty): every
# holder re-asserts its slots, so the count is true again within one renewal.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local fresh = redis.call('EXISTS', KEYS[2]) == 0
local lost = {}
for i = 2, #ARGV do
  if fresh or redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + lease, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
redis.call('SET', KEYS[2], '1', 'PX', 2 * lease)
redis.call('PEXPIRE', KEYS[1], 2 * lease)
return lost
"""

#: How often a waiter on the local fallback looks whether Redis is back (it then rejoins
#: the fleet's budget).
_LOCAL_RECHECK = 0.25


class FleetSemaphore:
    """At most ``limit`` holders at once across every process sharing the Redis::

        budget = FleetSemaphore.from_url(url, limit=50)
        async with budget.slot():
            output = await client.run("owner/model", input=item)

    Each slot is a lease (``lease`` seconds, renewed every ``lease / 3`` while held), so
    a process that dies gives its slots back when their leases lapse; :attr:`held` drops
    a slot whose lease lapsed. If Redis restarts empty, holders re-assert their slots at
    their next renewal. Waiters poll with jittered back-off (``poll_min`` .. ``poll_max``
    seconds) and are woken at once by a release in their own process. While Redis is
    unreachable, this process falls back to a local semaphore of ``local_limit`` (default
    ``limit``) slots; waiters still queued there when Redis is back rejoin the fleet's
    budget.
    """

    def __init__(
        self,
        redis: AnyRedis,
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
        base = f"{keyspace(prefix)}:semaphore:{name}"
        self._keys = [base, f"{base}:marker"]
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
        self._link = Link.shared(redis, clock)
        #: Counters: slots taken in Redis, slots taken locally, leases lost.
        self.stats: dict[str, int] = {"acquired": 0, "local": 0, "lost": 0}

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
            if self._link.down:
                if await self._acquire_local():
                    return "local"
                continue  # Redis is back: rejoin the fleet's budget
            token = uuid.uuid4().hex
            try:
                args: list[str | int] = [self.limit, self._lease_ms, token]
                got = await self._link.call(
                    partial(self._acquire_script, keys=self._keys[:1], args=args), self._timeout
                )
            except Unavailable:
                if self._link.is_down():
                    continue  # an outage: the local path, above
                await self._local.acquire()  # this call failed (not an outage): go local
                self.stats["local"] += 1
                return "local"
            if got:
                self._held.add(token)
                self.stats["acquired"] += 1
                self._ensure_renewer()
                return token
            self._released.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(random.uniform(delay / 2, delay)):
                    await self._released.wait()
            delay = min(delay * 2.0, self._poll[1])

    async def _acquire_local(self) -> bool:
        """A local slot (True), or False once Redis is back while waiting for one."""
        while self._link.down:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_LOCAL_RECHECK):
                    await self._local.acquire()
                    self.stats["local"] += 1
                    return True
        return False

    async def release(self, token: str) -> None:
        """Give a slot back (safe to call once per :meth:`acquire`)."""
        if token == "local":
            self._local.release()
        elif token in self._held:
            self._held.discard(token)
            with contextlib.suppress(Unavailable):
                await self._link.call(lambda: self._redis.zrem(self._keys[0], token), self._timeout)
        self._released.set()

    @property
    def held(self) -> int:
        """Slots this process holds in Redis now (a slot whose lease lapsed is not)."""
        return len(self._held)

    async def aclose(self) -> None:
        """Stop renewing and give back this process's slots."""
        renewer, self._renewer = self._renewer, None
        self._closing = True
        await stop_task(renewer)
        if self._held:
            held = list(self._held)
            with contextlib.suppress(Unavailable):
                await self._link.call(lambda: self._redis.zrem(self._keys[0], *held), self._timeout)
            self._held.clear()
        await self._link.release()
        if self._close_redis:
            await self._redis.aclose()

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while self._held and not self._closing:
            await self._clock.sleep(self._lease_ms / 3000)
            held = list(self._held)
            if not held:
                return
            try:
                args: list[str | int] = [self._lease_ms, *held]
                lost = await self._link.call(
                    partial(self._renew_script, keys=self._keys, args=args), self._timeout
                )
            except Unavailable:
                continue
            if lost:
                self._held.difference_update(text(token) for token in lost)
                self.stats["lost"] += len(lost)
                logger.warning("%d fleet semaphore leases lapsed before renewal", len(lost))
