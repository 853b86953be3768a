"""One object for a worker's share of the fleet: limiter, bus, registry, semaphore."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._clock import SYSTEM_CLOCK, Clock
from ._bus import RedisCompletionBus
from ._common import DEFAULT_PREFIX, AnyRedis, Link, connect
from ._limiter import RedisRateLimiter
from ._registry import InFlightRegistry
from ._semaphore import FleetSemaphore

if TYPE_CHECKING:
    from .._client import AsyncReplicate

__all__ = ["Fleet"]


class Fleet:
    """Everything one worker process needs to share a Replicate account with its peers
    through one Redis, on one connection pool and with one lifecycle::

        async with (
            Fleet.from_url("redis://localhost:6379/0", lease=30) as fleet,
            AsyncReplicate(fleet=fleet) as client,
        ):
            output = await client.run("owner/model", input={...})

    - :attr:`limiter` (:class:`RedisRateLimiter`): the account's rate limits, fleet-wide;
      ``AsyncReplicate(fleet=fleet)`` uses it (``limiter_options`` are passed on).
    - :attr:`registry` (:class:`InFlightRegistry`): every run the client starts (``run``,
      ``predictions.run``, ``stream``, ``use()``, ``WebhookWaiter.run``, ``run_many``) is
      recorded under this worker's heartbeat while it runs; when a worker dies, a live one
      cancels its runs (once each, within about ``lease * 1.25`` seconds).
    - :attr:`bus` (:class:`RedisCompletionBus`): pass it to
      ``WebhookWaiter.from_client(client, bus=fleet.bus, ...)`` so a webhook delivered to
      any worker resolves the run waited on in another.
    - :attr:`semaphore` (:class:`FleetSemaphore`, when ``max_in_flight`` is given): at most
      that many predictions in flight fleet-wide (``async with fleet.semaphore.slot():``).

    Every piece shares one view of Redis's health: the first timeout sends the whole
    process to its local fallbacks at once, one warning is logged, and a background probe
    brings it back (with one info line). Close the client before the fleet (nested
    ``async with`` as above does), so its runs are canceled once, by the client.
    :meth:`stats` sums up what happened. Works on a single node, a Sentinel-managed master
    (``Fleet.from_client(sentinel.master_for(...))``) and ``redis.asyncio.RedisCluster``
    (every key of one ``prefix`` shares a hash tag).
    """

    def __init__(
        self,
        redis: AnyRedis,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease: float = 30.0,
        max_in_flight: int | None = None,
        operation_timeout: float = 1.0,
        limiter_options: dict[str, Any] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        close_redis: bool = False,
    ) -> None:
        self.redis = redis
        self._close_redis = close_redis
        common: dict[str, Any] = {
            "prefix": prefix,
            "operation_timeout": operation_timeout,
            "clock": clock,
        }
        self.limiter = RedisRateLimiter(redis, **common, **(limiter_options or {}))
        self.bus = RedisCompletionBus(redis, **common)
        self.registry = InFlightRegistry(
            redis,
            None,
            lease=lease,
            **(common | {"operation_timeout": min(operation_timeout, lease / 5)}),
        )
        self.semaphore = (
            None
            if max_in_flight is None
            else FleetSemaphore(redis, max_in_flight, lease=lease, **common)
        )
        self._link = Link.shared(redis, clock)
        self._started = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Fleet:
        """A fleet on its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        # No socket timeout on the pool: every call has its own (``operation_timeout``),
        # and the completion channel's connection waits for messages.
        return cls(connect(url, socket_timeout=None), close_redis=True, **options)

    @classmethod
    def from_client(cls, redis: AnyRedis, **options: Any) -> Fleet:
        """A fleet on a redis-py asyncio client you own (``Redis``, a Sentinel master,
        ``RedisCluster``); :meth:`aclose` leaves it open."""
        return cls(redis, **options)

    def attach(self, client: AsyncReplicate) -> None:
        """Let ``client`` cancel dead workers' runs (the first client attached does);
        ``AsyncReplicate(fleet=...)`` calls this."""
        if self.registry.client is None:
            self.registry.client = client

    async def start(self) -> None:
        """Start heartbeating (idempotent; ``async with`` does it)."""
        if not self._started:
            self._started = True
            await self.registry.start()

    async def aclose(self) -> None:
        """Stop every piece: what this worker still tracks is canceled (once), its slots
        and heartbeat are given back, pending webhook waits fail with ClientClosedError."""
        await self.registry.aclose()
        if self.semaphore is not None:
            await self.semaphore.aclose()
        await self.bus.aclose()
        await self.limiter.aclose()
        await self._link.release()
        if self._close_redis:
            await self.redis.aclose()

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def stats(self) -> dict[str, Any]:
        """What this process saw: Redis outages and whether Redis is up now, 429 holds
        published, the learned create pace (seconds per create, ``None`` at the configured
        rate), runs in flight here, sweeps and the dead workers' runs canceled, webhook
        completions published and received, semaphore slots held."""
        return {
            "redis_up": not self._link.down,
            "outages": self._link.stats["outages"],
            "holds": self.limiter.stats["holds"],
            "learned_pace": self.limiter.learned_pace,
            "in_flight": len(self.registry.in_flight),
            "sweeps": self.registry.stats["sweeps"],
            "canceled": self.registry.stats["canceled"],
            "published": self.bus.stats["published"],
            "received": self.bus.stats["received"],
            "held": None if self.semaphore is None else self.semaphore.held,
        }
