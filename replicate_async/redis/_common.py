"""What the Redis pieces share: connections, one timeout per call, and outage tracking."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .._clock import SYSTEM_CLOCK, Clock

__all__ = [
    "DEFAULT_PREFIX",
    "REDIS_ERRORS",
    "Outage",
    "connect",
    "guarded",
    "guarded_retry",
    "stop_task",
    "logger",
]

logger = logging.getLogger("replicate_async.redis")

T = TypeVar("T")

#: Every key this package writes starts with this (change it to share one Redis between
#: several Replicate accounts or environments).
DEFAULT_PREFIX = "replicate_async"

#: What "Redis is unreachable or unhealthy" looks like: redis-py's errors (connection,
#: timeout, loading, read-only...), socket errors, and our own per-call timeout.
#: Seconds after which a probe that never reported (its caller was cancelled) no longer
#: stops another caller from probing.
_PROBE_LIMIT = 10.0

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A redis-py asyncio client for ``url`` with short socket timeouts by default."""
    options.setdefault("socket_connect_timeout", 1.0)
    options.setdefault("socket_timeout", 2.0)
    options.setdefault("health_check_interval", 30)
    return aioredis.Redis.from_url(url, **options)


async def guarded(call: Awaitable[T], timeout: float) -> T:
    """Await one Redis call, giving up after ``timeout`` seconds (``TimeoutError``).

    A cancellation that arrives as the call completes can be lost inside redis-py (its
    ``asyncio.wait_for`` on Python 3.11 returns the result instead); it is raised here, so
    cancelling a task waiting on Redis always works.
    """
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    async with asyncio.timeout(timeout):
        result = await call
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
    return result


async def stop_task(task: asyncio.Task[Any] | None, timeout: float = 5.0) -> None:
    """Cancel a background task and wait for it, at most ``timeout`` seconds."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait({task}, timeout=timeout)


async def guarded_retry(call: Callable[[], Awaitable[T]], timeout: float) -> T:
    """:func:`guarded`, once more on a broken connection (a pooled connection goes stale
    when Redis restarts; the second attempt opens a fresh one)."""
    try:
        return await guarded(call(), timeout)
    except RedisConnectionError:
        return await guarded(call(), timeout)


class Outage:
    """Whether Redis is reachable, as seen by one component of one process.

    The first failure logs one warning (then nothing until Redis is back, which is logged
    too); while down, :meth:`should_try` lets a single caller probe Redis again after a
    back-off (1 s, doubling up to 30 s) and sends every other caller to the local path.
    """

    __slots__ = ("_clock", "_delay", "_next_try", "_probe_started", "down", "what")

    def __init__(self, what: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.what = what
        self._clock = clock
        self.down = False
        self._delay = 1.0
        self._next_try = 0.0
        self._probe_started: float | None = None

    def should_try(self) -> bool:
        """True when this caller should use Redis (always while it is up)."""
        if not self.down:
            return True
        now = self._clock.monotonic()
        if now < self._next_try:
            return False
        started = self._probe_started
        if started is not None and now - started < _PROBE_LIMIT:
            return False  # one probe at a time (a cancelled probe expires)
        self._probe_started = now
        return True

    def failed(self, exc: BaseException) -> None:
        """Record a failed Redis call."""
        self._probe_started = None
        if not self.down:
            self.down = True
            self._delay = 1.0
            logger.warning(
                "Redis unreachable (%s: %s); %s",
                type(exc).__name__,
                exc,
                self.what,
            )
        else:
            self._delay = min(self._delay * 2.0, 30.0)
        self._next_try = self._clock.monotonic() + self._delay

    def succeeded(self) -> None:
        """Record a successful Redis call."""
        self._probe_started = None
        if self.down:
            self.down = False
            logger.warning("Redis reachable again; %s: back to the shared state", self.what)
