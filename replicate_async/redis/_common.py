"""What the Redis pieces share: connections, key names, one timeout per call, and the
outage state of each Redis as this process sees it (one :class:`Link` per Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MaxConnectionsError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._clock import SYSTEM_CLOCK, Clock

__all__ = [
    "DEFAULT_PREFIX",
    "REDIS_ERRORS",
    "AnyRedis",
    "Link",
    "Unavailable",
    "connect",
    "guarded",
    "keyspace",
    "logger",
    "stop_task",
    "text",
]

logger = logging.getLogger("replicate_async.redis")

T = TypeVar("T")

#: A single-node (or Sentinel-managed master) client, or a cluster client.
AnyRedis = aioredis.Redis | RedisCluster

#: Every key this package writes starts with ``{prefix}`` (change it to share one Redis
#: between several Replicate accounts or environments). The braces are a Redis Cluster hash
#: tag: every key of one prefix lives on one shard, so each script's keys share a slot.
DEFAULT_PREFIX = "replicate_async"

#: Anything a Redis call can raise that means "use the local path for this call".
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

#: What an outage looks like: no connection, no answer in time, or a server that cannot
#: serve (loading, read-only replica after a failover, cluster down). A full connection
#: pool is load, not an outage.
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    TimeoutError,
    OSError,
    BusyLoadingError,
    ReadOnlyError,
    ClusterDownError,
)

#: Redis calls one process runs at once per Redis (more queue for a turn, untimed, so a
#: crowd of requests is never mistaken for an unanswering server).
_CONCURRENT_CALLS = 64

#: The background probe's first and longest pause between PINGs while Redis is away.
_PROBE_FIRST, _PROBE_MAX = 0.1, 1.0

_OUTAGE_WARNING = (
    "Redis unreachable (%s: %s); until it is back this process coordinates alone: "
    "rate limits and concurrency per process, webhook deliveries resolve waiters in this "
    "process only, orphaned predictions are not swept"
)


def keyspace(prefix: str) -> str:
    """``{prefix}``: the hash-tagged start of every key of one fleet."""
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError("prefix must be non-empty, without braces")
    return "{" + prefix + "}"


def text(raw: Any) -> str:
    """A Redis reply (bytes or str) as text."""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


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


class Unavailable(Exception):
    """Redis is not to be used for this call (an outage, or this call failed): go local."""


class Link:
    """One process's view of one Redis, shared by every piece that uses it.

    The first connection error or timeout marks Redis down: one warning, and from then on
    every call raises :class:`Unavailable` at once (callers take their local path) while a
    background probe PINGs Redis (0.1 s, doubling to 1 s). When a PING is answered, Redis
    is up again: one info line, and the ``on_back`` callbacks run (republishing what was
    kept locally, rejoining the shared budget). Other Redis errors (a full pool, a script
    error) make that one call local without declaring an outage, and so does a timeout
    while other calls got their answers (a busy process, not a silent Redis). At most 64
    calls are in flight at once; the rest wait for a turn before their own timeout starts.
    """

    def __init__(self, redis: AnyRedis, clock: Clock = SYSTEM_CLOCK) -> None:
        self.redis = redis
        self.clock = clock
        self.down = False
        self._since = 0.0
        self._answered = 0.0  # when a call last got its answer (event loop time)
        self._gate = asyncio.Semaphore(_gate_size(redis))
        self._probe: asyncio.Task[None] | None = None
        self._users = 0
        self._key: Hashable = None
        self._loop: Callable[[], asyncio.AbstractEventLoop | None] = _no_loop
        self.on_back: list[Callable[[], Awaitable[None]]] = []
        #: Counters: outages seen, calls sent to the local path because Redis was down.
        self.stats: dict[str, int] = {"outages": 0, "local_calls": 0}

    async def call(self, make: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run ``make()`` on Redis within ``timeout`` (once more on a broken pooled
        connection); :class:`Unavailable` while Redis is down or when the call fails."""
        if self.down:
            self.stats["local_calls"] += 1
            raise Unavailable("Redis is unreachable")
        async with self._gate:
            if self.is_down():
                self.stats["local_calls"] += 1
                raise Unavailable("Redis is unreachable")
            loop = asyncio.get_running_loop()
            sent = loop.time()
            try:
                try:
                    result = await guarded(make(), timeout)
                except MaxConnectionsError:
                    raise
                except RedisConnectionError:  # a pooled connection went stale: a fresh one
                    result = await guarded(make(), timeout)
            except MaxConnectionsError as exc:
                logger.debug("Redis connection pool full; this call goes local", exc_info=True)
                raise Unavailable(str(exc)) from exc
            except (TimeoutError, RedisTimeoutError) as exc:
                if self._answered > sent:  # Redis answered others meanwhile: load, not down
                    logger.debug("a Redis call timed out under load; this call goes local")
                    raise Unavailable("timed out under load") from exc
                self.failed(exc)
                raise Unavailable(str(exc)) from exc
            except _OUTAGE_ERRORS as exc:
                self.failed(exc)
                raise Unavailable(str(exc)) from exc
            except RedisError as exc:
                logger.debug("a Redis call failed (%s); this call goes local", exc)
                raise Unavailable(str(exc)) from exc
            self._answered = loop.time()
            return result

    def is_down(self) -> bool:
        """Whether Redis is known to be away now."""
        return self.down

    def failed(self, exc: BaseException) -> None:
        """Record an outage (a no-op while one is known) and start probing."""
        if self.down:
            return
        self.down = True
        self._since = self.clock.monotonic()
        self.stats["outages"] += 1
        logger.warning(_OUTAGE_WARNING, type(exc).__name__, exc)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        delay = _PROBE_FIRST
        while self.down:
            await self.clock.sleep(delay)
            try:
                await guarded(self.redis.ping(), max(delay, 0.5))
            except REDIS_ERRORS:
                delay = min(delay * 2, _PROBE_MAX)
                continue
            self.down = False
            logger.info(
                "Redis reachable again after %.1fs; back to the shared state",
                self.clock.monotonic() - self._since,
            )
            for callback in list(self.on_back):
                try:
                    await callback()
                except Exception:  # one piece's failure must not stop the others'
                    logger.exception("catching up after the Redis outage failed")

    async def release(self) -> None:
        """One user fewer; the last one stops the probe."""
        self._users -= 1
        if self._users <= 0:
            if _LINKS.get(self._key) is self:
                del _LINKS[self._key]
            await stop_task(self._probe)

    @classmethod
    def shared(cls, redis: AnyRedis, clock: Clock = SYSTEM_CLOCK) -> Link:
        """The link of this process (and event loop) to the Redis ``redis`` points at;
        call :meth:`release` when done with it."""
        loop = _running_loop()
        key = (_target(redis), id(loop))
        link = _LINKS.get(key)
        if link is None or link._loop() is not loop:  # new, or an id reused by a new loop
            link = _LINKS[key] = cls(redis, clock)
            link._key = key
            link._loop = weakref.ref(loop) if loop is not None else _no_loop
        link._users += 1
        return link


_LINKS: dict[Hashable, Link] = {}


def _gate_size(redis: AnyRedis) -> int:
    """Calls at once: 64, fewer when the client's pool is smaller (two connections spare,
    for the completion channel and the probe), so a crowd waits for a turn instead of
    failing with "Too many connections"."""
    limit = getattr(getattr(redis, "connection_pool", None), "max_connections", None)
    if isinstance(limit, int) and limit < _CONCURRENT_CALLS + 2:
        return max(1, limit - 2)
    return _CONCURRENT_CALLS


def _running_loop() -> asyncio.AbstractEventLoop | None:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop()
    return None


def _no_loop() -> None:
    return None


def _target(redis: AnyRedis) -> Hashable:
    """Which Redis a client talks to (clients of one target share a :class:`Link`)."""
    if isinstance(redis, RedisCluster):
        nodes = getattr(getattr(redis, "nodes_manager", None), "startup_nodes", None) or {}
        return ("cluster", tuple(sorted(nodes)) or id(redis))
    pool = getattr(redis, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        if "service_name" in kwargs or type(pool).__name__.startswith("Sentinel"):
            return ("sentinel", id(pool))
        parts = ("host", "port", "path", "db", "username")
        return ("node", type(pool).__name__, *(str(kwargs.get(p)) for p in parts))
    return ("client", id(redis))
