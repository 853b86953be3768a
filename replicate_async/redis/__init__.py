"""Many workers, one Replicate account: coordination through Redis (``pip install
"replicate-async[redis]"``, on redis-py's asyncio client).

- :class:`Fleet`: all of the below on one connection pool with one lifecycle;
  ``AsyncReplicate(fleet=Fleet.from_url(url))`` wires the limiter and the registry.
- :class:`RedisRateLimiter`: one fleet-wide rate limit per request kind and a shared
  429 hold; ``AsyncReplicate(limiter=RedisRateLimiter.from_url(url))`` in every worker.
- :class:`RedisCompletionBus`: lets any worker take a webhook delivery and the waiting
  worker resolve; ``WebhookWaiter(..., bus=RedisCompletionBus.from_url(url))``.
- :class:`InFlightRegistry`: records predictions in flight under each worker's heartbeat;
  live workers cancel a dead worker's predictions.
- :class:`FleetSemaphore`: at most N predictions in flight for the whole account.

Each falls back to in-process behaviour when Redis is unreachable (the first timeout sends
every piece of the process to its local path at once, until a background probe sees Redis
again), logs one warning per outage and one info line when it is back (logger
``replicate_async.redis``), and never blocks on Redis or drops a request. Keys start with
``{prefix}``, a Redis Cluster hash tag, so everything works on ``RedisCluster`` too.
"""

from ._bus import RedisCompletionBus
from ._common import DEFAULT_PREFIX, connect
from ._fleet import Fleet
from ._limiter import RedisRateLimiter
from ._registry import InFlightRegistry
from ._semaphore import FleetSemaphore

__all__ = [
    "DEFAULT_PREFIX",
    "Fleet",
    "FleetSemaphore",
    "InFlightRegistry",
    "RedisCompletionBus",
    "RedisRateLimiter",
    "connect",
]
