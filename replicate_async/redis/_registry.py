"""Which predictions each worker has in flight, and a fenced sweeper that cancels a dead
worker's.

Liveness is a heartbeat timestamp on Redis's own clock (``TIME``), never key expiry
alone: when Redis stalls (``DEBUG SLEEP``, a paused or failing-over server), every key
would look expired at once to the first worker back. So a worker sweeps only while it has
itself seen Redis *continuously* (heartbeats no more than half a lease apart on Redis's
clock) for a full lease, and an owner counts as dead only when its own heartbeat is older
than the lease by that same clock. After a stall every worker first gets a whole lease to
beat again.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._clock import SYSTEM_CLOCK, Clock
from ..exceptions import NotFoundError, ReplicateError
from ..models import Prediction
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

if TYPE_CHECKING:
    from .._client import AsyncReplicate

__all__ = ["InFlightRegistry"]

#: Cancels one sweep sends at most (the rest wait for the next sweep), and at once.
_MAX_CANCELS_PER_SWEEP = 200
_CANCEL_CONCURRENCY = 8
#: Failed cancels of one prediction after which the sweepers give up on it.
_MAX_CANCEL_ATTEMPTS = 3
#: How long an owner's keys outlive its last heartbeat (ms): a day, or 10 leases.
_KEEP_MS = 86_400_000

# KEYS: owners (zset: owner -> last beat, ms on Redis's clock), this owner's runs.
# ARGV: owner, keep ms, full (1: rewrite the runs from ARGV[4..] as id, deadline pairs).
# A full rewrite also happens when the runs vanished (Redis restarted empty) but we track
# some. Returns Redis's time, ms.
_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] == '1' or (#ARGV > 3 and redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('DEL', KEYS[2])
  for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return now
"""

# KEYS: owners, the owner's runs, its sweep lock. ARGV: owner, lease ms, the sweeper's last
# beat (ms), the largest gap (ms) that still counts as continuous. The runs of an owner
# whose beat is older than a lease, unless Redis stalled since the sweeper's beat or
# another sweeper holds the owner; else false.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now - tonumber(ARGV[3]) > tonumber(ARGV[4]) then return false end
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if beat and now - tonumber(beat) <= tonumber(ARGV[2]) then return false end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then return false end
local runs = redis.call('HGETALL', KEYS[2])
if #runs == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[4])
end
return runs
"""


class InFlightRegistry:
    """Records every tracked prediction under this worker's heartbeat; cancels orphans.

    With :class:`~replicate_async.redis.Fleet` and ``AsyncReplicate(fleet=fleet)`` every
    run the client starts is recorded on its own (the registry is a run observer of the
    client). By hand, each worker opens one registry with the client it creates
    predictions with, and wraps each wait in :meth:`track`::

        async with InFlightRegistry.from_url(url, client, lease=30) as registry:
            prediction = await client.predictions.create(version=ref, input=item)
            async with registry.track(prediction):
                prediction = await client.predictions.wait(prediction, timeout=600)

    While open, the registry writes a heartbeat (a timestamp on Redis's clock) every
    ``lease / 4`` seconds. A worker whose heartbeat is older than ``lease`` is dead: one
    live worker claims it and cancels its tracked predictions through
    ``client.predictions.cancel``, each once (a prediction whose cancel fails 3 times is
    given up). Fencing keeps a Redis stall from looking like dead workers: a worker sweeps
    only after it has seen Redis continuously for a whole lease, so after any stall every
    live worker beats again before anyone judges. A killed worker's predictions are
    canceled within about ``lease + lease / 4`` seconds (``Cancel-After`` stays the last
    backstop). Closing the registry cancels what this worker still tracks. Every key has a
    TTL (a day after the last heartbeat). Each Redis call gives up after
    ``operation_timeout`` (default: ``lease / 5``, at most 2 s).
    """

    def __init__(
        self,
        redis: AnyRedis,
        client: AsyncReplicate | None = None,
        *,
        lease: float = 30.0,
        owner: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        operation_timeout: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        close_redis: bool = False,
    ) -> None:
        if not lease >= 0.1:
            raise ValueError("lease must be at least 0.1 seconds")
        if operation_timeout is None:
            operation_timeout = min(2.0, lease / 5)
        if not 0 < operation_timeout < lease / 4:
            raise ValueError("operation_timeout must be positive and under lease / 4")
        self._clock = clock
        self._redis = redis
        self.client = client
        self._close_redis = close_redis
        self._lease_ms = round(lease * 1000)
        self._gap_ms = self._lease_ms // 2
        #: This worker's id in Redis (host, pid and a random part by default).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._space = keyspace(prefix)
        self._owners = f"{self._space}:owners"
        self._timeout = operation_timeout
        self._tracked: dict[str, str] = {}
        self._canceled: set[str] = set()  # by this registry: never a second cancel
        self._dirty = True  # Redis may not hold what we track: rewrite at the next beat
        self._last_seen: int | None = None  # Redis time of our last beat, while continuous
        self._continuous_since = 0
        self._task: asyncio.Task[None] | None = None
        self._link = Link.shared(redis, clock)
        self._beat = redis.register_script(_BEAT)
        self._claim = redis.register_script(_CLAIM)
        #: Counters: sweeps run, orphaned predictions canceled, given up after failures.
        self.stats: dict[str, int] = {"sweeps": 0, "canceled": 0, "gave_up": 0}

    @classmethod
    def from_url(
        cls, url: str, client: AsyncReplicate | None = None, **options: Any
    ) -> InFlightRegistry:
        """A registry with its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        return cls(connect(url), client, close_redis=True, **options)

    def _keys(self, owner: str) -> tuple[str, str, str]:
        base = f"{self._space}:owner:{owner}"
        return f"{base}:runs", f"{base}:sweep", f"{base}:failures"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Publish the first heartbeat and start heartbeating and sweeping (idempotent)."""
        if self._task is not None:
            return
        await self._heartbeat()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def aclose(self) -> None:
        """Stop; cancel what this worker still tracks (once); withdraw its heartbeat."""
        task, self._task = self._task, None
        await stop_task(task)
        left = [pid for pid in self._tracked if pid not in self._canceled]
        if left and self.client is not None:
            await self._cancel_all(left, self.owner)
        runs, _, failures = self._keys(self.owner)
        with contextlib.suppress(Unavailable):
            await self._link.call(lambda: self._redis.delete(runs, failures), self._timeout)
            await self._link.call(lambda: self._redis.zrem(self._owners, self.owner), self._timeout)
        await self._link.release()
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
        value = _deadline_text(deadline if deadline is not None else found)
        self._tracked[prediction_id] = value
        await self._write(partial(self._record, prediction_id, value))

    async def _record(self, prediction_id: str, value: str) -> None:
        runs, _, _ = self._keys(self.owner)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(runs, prediction_id, value)
            pipe.pexpire(runs, _KEEP_MS)
            await pipe.execute()

    async def discard(self, prediction: Prediction | str) -> None:
        """Forget ``prediction`` (finished, or handed to someone else)."""
        prediction_id, _ = _id_and_deadline(prediction)
        if self._tracked.pop(prediction_id, None) is None:
            return
        runs, _, _ = self._keys(self.owner)
        await self._write(lambda: self._redis.hdel(runs, prediction_id))

    async def run_created(self, prediction: Prediction) -> None:
        """The client's run observer: a run was created (it is tracked until settled)."""
        await self.add(prediction)

    async def run_settled(self, prediction_id: str) -> None:
        """The client's run observer: the run ended (it is no longer tracked)."""
        await self.discard(prediction_id)

    async def _write(self, make: Any) -> None:
        try:
            await self._link.call(make, self._timeout)
        except Unavailable:
            self._dirty = True  # the next heartbeat rewrites the whole set

    @property
    def in_flight(self) -> frozenset[str]:
        """Ids this worker tracks now."""
        return frozenset(self._tracked)

    # -- heartbeat and sweeping ------------------------------------------------------------

    async def _heartbeat(self) -> int | None:
        """Write the heartbeat (and the tracked runs when Redis may have lost them); Redis's
        time, or ``None`` when Redis could not be reached. Tracks continuity."""
        runs, _, _ = self._keys(self.owner)
        full = self._dirty
        pairs = [item for pair in self._tracked.items() for item in pair]
        args = [self.owner, _KEEP_MS, "1" if full else "0", *pairs]
        try:
            now = int(
                await self._link.call(
                    lambda: self._beat(keys=[self._owners, runs], args=args), self._timeout
                )
            )
        except Unavailable:
            self._last_seen = None
            return None
        if full:
            self._dirty = False
        if self._last_seen is None or now - self._last_seen > self._gap_ms:
            self._continuous_since = now  # a stall or an outage: judge nobody for a lease
        self._last_seen = now
        return now

    async def _loop(self) -> None:
        """Heartbeat every lease / 4 (lease / 8 after a failure) and sweep when fenced in.
        Supervised: nothing that goes wrong in one round stops the next."""
        while True:
            await self._clock.sleep(self._lease_ms / (4000 if self._last_seen else 8000))
            try:
                now = await self._heartbeat()
                if now is not None and now - self._continuous_since >= self._lease_ms:
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("in-flight registry round failed; going on")

    async def sweep(self) -> list[str]:
        """Cancel the tracked predictions of every worker whose heartbeat is older than the
        lease, now (if this worker has seen Redis continuously for a lease). The ids
        canceled; runs on its own after each heartbeat."""
        seen = self._last_seen
        if self.client is None or seen is None or seen - self._continuous_since < self._lease_ms:
            return []
        self.stats["sweeps"] += 1
        try:
            lapsed = await self._link.call(
                lambda: self._redis.zrangebyscore(self._owners, "-inf", seen - self._lease_ms),
                self._timeout,
            )
        except Unavailable:
            return []
        canceled: list[str] = []
        for raw in lapsed:
            owner = text(raw)
            if owner == self.owner:
                continue
            try:
                canceled += await self._sweep_owner(owner, seen)
            except Unavailable:
                break
            except Exception:
                logger.exception("sweeping lapsed worker %s failed; skipped this round", owner)
        return canceled

    async def _sweep_owner(self, owner: str, seen: int) -> list[str]:
        runs, lock, failures = self._keys(owner)
        args: list[str | int] = [owner, self._lease_ms, seen, self._gap_ms]
        claimed = await self._link.call(
            lambda: self._claim(keys=[self._owners, runs, lock, failures], args=args),
            self._timeout,
        )
        if not claimed:
            return []
        pairs = [text(x) for x in claimed]
        entries = dict(zip(pairs[::2], pairs[1::2], strict=True))
        now = self._clock_now()
        expired = [pid for pid, when in entries.items() if _past(when, now)]
        if expired:
            await self._link.call(lambda: self._redis.hdel(runs, *expired), self._timeout)
        todo = [pid for pid in entries if pid not in expired][:_MAX_CANCELS_PER_SWEEP]
        canceled = await self._cancel_all(todo, owner)
        if canceled:
            logger.warning("canceled %d predictions of lapsed worker %s", len(canceled), owner)
        return canceled

    def _clock_now(self) -> float:
        seen = self._last_seen
        return seen / 1000 if seen is not None else 0.0

    async def _cancel_all(self, ids: list[str], owner: str) -> list[str]:
        """Cancel ``ids`` (bounded concurrency); drop each handled one from ``owner``'s runs."""
        gate = asyncio.Semaphore(_CANCEL_CONCURRENCY)
        canceled: list[str] = []

        async def cancel(prediction_id: str) -> None:
            async with gate:
                if await self._cancel_one(prediction_id, owner):
                    canceled.append(prediction_id)

        async with asyncio.TaskGroup() as group:
            for prediction_id in ids:
                group.create_task(cancel(prediction_id))
        self.stats["canceled"] += len(canceled)
        return canceled

    async def _cancel_one(self, prediction_id: str, owner: str) -> bool:
        """One cancel; after the last failed attempt the prediction is given up."""
        runs, _, failures = self._keys(owner)
        assert self.client is not None
        try:
            await self.client.predictions.cancel(prediction_id)
        except NotFoundError:
            pass
        except ReplicateError as exc:
            logger.warning("could not cancel %s: %s", prediction_id, exc)
            with contextlib.suppress(Unavailable):
                count = await self._link.call(
                    lambda: self._redis.hincrby(failures, prediction_id, 1), self._timeout
                )
                if int(count) < _MAX_CANCEL_ATTEMPTS:
                    await self._link.call(
                        lambda: self._redis.pexpire(failures, _KEEP_MS), self._timeout
                    )
                    return False
                logger.warning("gave up canceling %s after %d attempts", prediction_id, count)
                self.stats["gave_up"] += 1
                await self._link.call(lambda: self._redis.hdel(runs, prediction_id), self._timeout)
            return False
        self._canceled.add(prediction_id)
        if owner == self.owner:
            self._tracked.pop(prediction_id, None)
        with contextlib.suppress(Unavailable):
            await self._link.call(lambda: self._redis.hdel(runs, prediction_id), self._timeout)
        return True


def _deadline_text(when: Any) -> str:
    """A deadline as stored: a plain float literal (``Decimal``, numpy floats and other
    float subclasses normalised on write), or empty for none."""
    if when is None:
        return ""
    try:
        value = float(when)
    except (TypeError, ValueError):
        raise TypeError(f"deadline must be a number of unix seconds, not {when!r}") from None
    if not math.isfinite(value):
        raise TypeError(f"deadline must be a finite number of unix seconds, not {when!r}")
    return repr(value)


def _past(stored: str, now: float) -> bool:
    """Whether a stored deadline has passed; unreadable ones count as no deadline."""
    if not stored:
        return False
    try:
        return float(stored) < now
    except ValueError:
        return False


def _id_and_deadline(prediction: Prediction | str) -> tuple[str, float | None]:
    if isinstance(prediction, str):
        if not prediction:
            raise ValueError("a prediction id must not be empty")
        return prediction, None
    when: datetime | None = prediction.deadline
    return prediction.id, None if when is None else when.timestamp()
