"""Many workers, one Replicate account: coordination through Redis (``pip install
"replicate-async[redis]"``, on redis-py's asyncio client).

- :class:`RedisRateLimiter`: one fleet-wide rate limit per request kind and a shared
  429 hold; ``AsyncReplicate(limiter=RedisRateLimiter.from_url(url))`` in every worker.
- :class:`RedisCompletionBus`: lets any worker take a webhook delivery and the waiting
  worker resolve; ``WebhookWaiter(..., bus=RedisCompletionBus.from_url(url))``.
- :class:`InFlightRegistry`: records predictions in flight under each worker's heartbeat;
  live workers cancel a dead worker's predictions.
- :class:`FleetSemaphore`: at most N predictions in flight for the whole account.

Each falls back to in-process behaviour when Redis is unreachable, logs one warning
(logger ``replicate_async.redis``), and never blocks on Redis or drops a request.
"""

from ._bus import RedisCompletionBus
from ._common import DEFAULT_PREFIX, connect
from ._limiter import RedisRateLimiter
from ._registry import InFlightRegistry
from ._semaphore import FleetSemaphore

__all__ = [
    "DEFAULT_PREFIX",
    "FleetSemaphore",
    "InFlightRegistry",
    "RedisCompletionBus",
    "RedisRateLimiter",
    "connect",
]
