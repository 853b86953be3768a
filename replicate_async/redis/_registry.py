"""Which predictions each worker has in flight, and a sweeper that cancels a dead one's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from .._clock import SYSTEM_CLOCK, Clock
from ..exceptions import NotFoundError, ReplicateError
from ..models import Prediction
from ._common import DEFAULT_PREFIX, REDIS_ERRORS, Outage, connect, guarded, logger, stop_task

if TYPE_CHECKING:
    from .._client import AsyncReplicate

__all__ = ["InFlightRegistry"]

#: Cancels one sweep sends at most (the rest wait for the next sweep), and at once.
_MAX_CANCELS_PER_SWEEP = 200
_CANCEL_CONCURRENCY = 8

# KEYS: owner's heartbeat key, owner's runs hash, sweep lock. ARGV: lock ms.
# Returns nil while the owner is alive or another sweeper holds the lock, else its runs.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then return false end
return redis.call('HGETALL', KEYS[2])
"""

# KEYS: owners set, owner's heartbeat key, owner's runs hash. ARGV: owner.
# Forget a dead owner whose runs are all handled.
_FORGET = """
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('HLEN', KEYS[3]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class InFlightRegistry:
    """Records every tracked prediction under this worker's heartbeat; cancels orphans.

    Each worker (process) opens one registry with the client it creates predictions
    with, and wraps each wait in :meth:`track`::

        async with InFlightRegistry.from_url(url, client, lease=30) as registry:
            prediction = await client.predictions.create(version=ref, input=item)
            async with registry.track(prediction):
                prediction = await client.predictions.wait(prediction, timeout=600)

    While open, the registry refreshes a heartbeat key (expiring after ``lease``
    seconds) every ``lease / 3`` seconds, and every ``sweep_interval`` (``lease / 4``)
    looks for workers whose heartbeat has lapsed: one live worker claims each such
    worker and cancels its tracked predictions through ``client.predictions.cancel``.
    So a worker that dies (killed, OOM, lost host) has its predictions canceled within
    about ``lease + sweep_interval`` seconds; ``Cancel-After`` (``cancel_after=``)
    stays the last backstop if no worker survives. Closing the registry cancels what
    this worker still tracks (bounded by ``operation_timeout`` per call). Heartbeats and
    sweeps wait on ``clock``; Redis's key expiry decides when a heartbeat has lapsed.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        client: AsyncReplicate,
        *,
        lease: float = 30.0,
        sweep_interval: float | None = None,
        owner: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        operation_timeout: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
        close_redis: bool = False,
    ) -> None:
        if not lease >= 0.1:
            raise ValueError("lease must be at least 0.1 seconds")
        self._clock = clock
        self._redis = redis
        self._client = client
        self._close_redis = close_redis
        self._lease_ms = round(lease * 1000)
        self._sweep_interval = sweep_interval if sweep_interval is not None else lease / 4
        #: This worker's id in Redis (host, pid and a random part by default).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._prefix = prefix
        self._timeout = operation_timeout
        self._tracked: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._beating = False  # a heartbeat has been written before
        self._stopping = False
        self._outage = Outage("orphaned predictions are not swept meanwhile", clock)
        #: Counters: sweeps run, orphaned predictions canceled.
        self.stats: dict[str, int] = {"sweeps": 0, "canceled": 0}

    @classmethod
    def from_url(cls, url: str, client: AsyncReplicate, **options: Any) -> InFlightRegistry:
        """A registry with its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        return cls(connect(url), client, close_redis=True, **options)

    def _keys(self, owner: str) -> tuple[str, str, str]:
        base = f"{self._prefix}:owner:{owner}"
        return f"{base}:alive", f"{base}:runs", f"{base}:sweep"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Publish the first heartbeat and start heartbeating and sweeping (idempotent)."""
        if self._task is not None:
            return
        await self._heartbeat()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def aclose(self) -> None:
        """Stop; cancel what this worker still tracks; withdraw its heartbeat."""
        task, self._task = self._task, None
        self._stopping = True
        await stop_task(task)
        if self._tracked:
            await self._cancel_all(list(self._tracked), self.owner)
        alive, runs, _ = self._keys(self.owner)
        with contextlib.suppress(*REDIS_ERRORS):
            await guarded(self._redis.delete(alive, runs), self._timeout)
            await guarded(self._redis.srem(f"{self._prefix}:owners", self.owner), self._timeout)
        if self._close_redis:
            await self._redis.aclose()

    async def __aenter__(self) -> InFlightRegistry:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- tracking ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def track(
        self, prediction: Prediction | str, *, deadline: float | None = None
    ) -> AsyncIterator[None]:
        """Record ``prediction`` as in flight for this block (``deadline``: unix seconds
        after which the server cancels it anyway; default its ``deadline`` field)."""
        await self.add(prediction, deadline=deadline)
        try:
            yield
        finally:
            await self.discard(prediction)

    async def add(self, prediction: Prediction | str, *, deadline: float | None = None) -> None:
        """Record ``prediction`` as in flight (see :meth:`track`)."""
        prediction_id, found = _id_and_deadline(prediction)
        when = deadline if deadline is not None else found
        value = "" if when is None else repr(when)
        self._tracked[prediction_id] = value
        _, runs, _ = self._keys(self.owner)
        await self._call(self._redis.hset(runs, prediction_id, value))

    async def discard(self, prediction: Prediction | str) -> None:
        """Forget ``prediction`` (finished, or handed to someone else)."""
        prediction_id, _ = _id_and_deadline(prediction)
        self._tracked.pop(prediction_id, None)
        _, runs, _ = self._keys(self.owner)
        await self._call(self._redis.hdel(runs, prediction_id))

    @property
    def in_flight(self) -> frozenset[str]:
        """Ids this worker tracks now."""
        return frozenset(self._tracked)

    # -- heartbeat and sweeping ------------------------------------------------------------

    async def _call(self, call: Any) -> Any:
        try:
            result = await guarded(call, self._timeout)
        except REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return None
        self._outage.succeeded()
        return result

    async def _heartbeat(self) -> None:
        """Renew the heartbeat and rewrite this worker's runs as tracked now (which also
        repairs what an outage left stale)."""
        alive, runs, _ = self._keys(self.owner)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(alive, b"1", px=self._lease_ms, get=True)
        pipe.sadd(f"{self._prefix}:owners", self.owner)
        pipe.delete(runs)
        if self._tracked:
            tracked: dict[Any, Any] = dict(self._tracked)
            pipe.hset(runs, mapping=tracked)
        result = await self._call(pipe.execute())
        if result is not None and result[0] is None and self._beating:
            logger.warning("this worker's heartbeat lapsed; its predictions may be canceled")
        self._beating = self._beating or result is not None

    async def _loop(self) -> None:
        clock = self._clock
        beat_every = self._lease_ms / 3000
        next_beat = clock.monotonic() + beat_every
        while not self._stopping:
            await clock.sleep(min(self._sweep_interval, max(0.0, next_beat - clock.monotonic())))
            if clock.monotonic() >= next_beat:
                await self._heartbeat()
                next_beat = clock.monotonic() + beat_every
            with contextlib.suppress(*REDIS_ERRORS):
                await self.sweep()

    async def sweep(self) -> list[str]:
        """Cancel the tracked predictions of every worker whose heartbeat lapsed, now.

        Returns the ids canceled. Runs on its own every ``sweep_interval``.
        """
        self.stats["sweeps"] += 1
        owners = await self._call(self._redis.smembers(f"{self._prefix}:owners"))
        canceled: list[str] = []
        for raw in owners or ():
            owner = raw.decode() if isinstance(raw, bytes) else str(raw)
            if owner != self.owner:
                canceled += await self._sweep_owner(owner)
        return canceled

    async def _sweep_owner(self, owner: str) -> list[str]:
        alive, runs, lock = self._keys(owner)
        claimed = await self._call(self._redis.eval(_CLAIM, 3, alive, runs, lock, self._lease_ms))
        if claimed is None:
            return []
        pairs = [x.decode() if isinstance(x, bytes) else str(x) for x in claimed]
        entries = dict(zip(pairs[::2], pairs[1::2], strict=True))
        now = time.time()
        expired = [pid for pid, when in entries.items() if when and float(when) < now]
        if expired:
            await self._call(self._redis.hdel(runs, *expired))
        todo = [pid for pid in entries if pid not in expired][:_MAX_CANCELS_PER_SWEEP]
        canceled = await self._cancel_all(todo, owner)
        await self._call(self._redis.eval(_FORGET, 3, f"{self._prefix}:owners", alive, runs, owner))
        if canceled:
            logger.warning("canceled %d predictions of lapsed worker %s", len(canceled), owner)
        return canceled

    async def _cancel_all(self, ids: list[str], owner: str) -> list[str]:
        """Cancel ``ids`` (bounded concurrency); drop each handled one from ``owner``'s runs."""
        _, runs, _ = self._keys(owner)
        gate = asyncio.Semaphore(_CANCEL_CONCURRENCY)
        canceled: list[str] = []

        async def cancel(prediction_id: str) -> None:
            async with gate:
                try:
                    await self._client.predictions.cancel(prediction_id)
                except NotFoundError:
                    pass
                except ReplicateError as exc:
                    logger.warning("could not cancel %s: %s", prediction_id, exc)
                    return
                canceled.append(prediction_id)
                if owner == self.owner:
                    self._tracked.pop(prediction_id, None)
                await self._call(self._redis.hdel(runs, prediction_id))

        async with asyncio.TaskGroup() as group:
            for prediction_id in ids:
                group.create_task(cancel(prediction_id))
        self.stats["canceled"] += len(canceled)
        return canceled


def _id_and_deadline(prediction: Prediction | str) -> tuple[str, float | None]:
    if isinstance(prediction, str):
        if not prediction:
            raise ValueError("a prediction id must not be empty")
        return prediction, None
    when: datetime | None = prediction.deadline
    return prediction.id, None if when is None else when.timestamp()
