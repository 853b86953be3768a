"""A completion bus in Redis: any worker takes a webhook delivery, the waiting one resolves."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from .._clock import SYSTEM_CLOCK, Clock
from .._converter import dumps, loads
from ..exceptions import ClientClosedError
from ._common import (
    DEFAULT_PREFIX,
    REDIS_ERRORS,
    AnyRedis,
    Link,
    Unavailable,
    connect,
    guarded,
    keyspace,
    logger,
    stop_task,
)

__all__ = ["RedisCompletionBus"]

#: Seconds without a message before the completion channel is PINGed (and then, with no
#: answer for as long again, reconnected).
_KEEPALIVE = 15.0
#: Webhook ids remembered in-process for de-duplication while Redis is unreachable.
_LOCAL_SEEN = 10_000
#: Completions taken while Redis was unreachable, kept to publish when it is back.
_LOCAL_PENDING = 10_000


class RedisCompletionBus:
    """A :class:`~replicate_async._workflows.bus.CompletionBus` shared by processes, for
    :class:`~replicate_async.WebhookWaiter`.

    ``WebhookWaiter(..., bus=RedisCompletionBus.from_url(url))`` in every worker: the
    worker that receives a delivery de-duplicates it fleet-wide (``SET NX EX`` on the
    ``webhook-id``, kept ``dedup_ttl`` seconds), stores the terminal prediction for
    ``result_ttl`` seconds (a delivery can beat the create's own response) and publishes
    it on one channel; every process listens on that channel over a single pub/sub
    connection and resolves its own waiters. A waiter first looks for the stored
    prediction, so nothing published before it started waiting is missed.

    If Redis is unreachable, deliveries still resolve waiters in the receiving process at
    once (the first call that finds Redis away marks it down for every Redis piece of the
    process, so only that one waits for ``operation_timeout``), de-duplication falls back
    to this process, and the completions taken meanwhile are stored and published as soon
    as Redis is back, resolving the waiters in other processes. After the pub/sub
    connection comes back, every pending waiter looks for its stored prediction again. On
    Redis Cluster the channel is a sharded one (``SSUBSCRIBE``/``SPUBLISH``).
    """

    def __init__(
        self,
        redis: AnyRedis,
        *,
        prefix: str = DEFAULT_PREFIX,
        result_ttl: float = 3600.0,
        dedup_ttl: float = 3600.0,
        operation_timeout: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
        close_redis: bool = False,
    ) -> None:
        if not result_ttl >= 1 or not dedup_ttl >= 1:
            raise ValueError("result_ttl and dedup_ttl must be at least 1 second")
        self._redis = redis
        self._clock = clock
        self._close_redis = close_redis
        self._prefix = prefix
        self._space = keyspace(prefix)
        self._channel = f"{self._space}:completed"
        self._sharded = isinstance(redis, RedisCluster)
        self._result_ttl = int(result_ttl)
        self._dedup_ttl = int(dedup_ttl)
        self._timeout = operation_timeout
        self._waiters: dict[str, list[asyncio.Future[Mapping[str, Any]]]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._listener: asyncio.Task[None] | None = None
        # Set once the first subscription attempt settled (subscribed, or Redis failed).
        self._settled: asyncio.Event | None = None
        self._closed = False
        self._link = Link.shared(redis, clock)
        self._link.on_back.append(self._publish_pending)
        self._pending: OrderedDict[str, bytes] = OrderedDict()
        #: Counters: deliveries published, completions received from the channel, waits
        #: answered from the stored value, (re)subscriptions made.
        self.stats: dict[str, int] = {
            "published": 0,
            "received": 0,
            "stored_hits": 0,
            "subscribed": 0,
            "republished": 0,
        }

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCompletionBus:
        """A bus with its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        return cls(connect(url, socket_timeout=None), close_redis=True, **options)

    def _key(self, what: str, ident: str) -> str:
        return f"{self._space}:{what}:{ident}"

    # -- the CompletionBus protocol ----------------------------------------------------

    async def first_delivery(self, webhook_id: str) -> bool:
        """True the first time any process of the fleet sees this ``webhook-id``."""
        if webhook_id in self._seen:
            return False
        self._seen[webhook_id] = None
        while len(self._seen) > _LOCAL_SEEN:
            self._seen.popitem(last=False)
        key = self._key("webhook", webhook_id)
        try:
            first = await self._link.call(
                lambda: self._redis.set(key, b"1", nx=True, ex=self._dedup_ttl), self._timeout
            )
        except Unavailable:
            return True
        return bool(first)

    async def publish(self, prediction: Mapping[str, Any]) -> None:
        """Resolve local waiters, store the prediction with a TTL and broadcast it."""
        prediction_id = str(prediction["id"])
        self._resolve(prediction_id, prediction)
        data = dumps(dict(prediction))
        try:
            await self._link.call(
                lambda: self._store_and_broadcast(prediction_id, data), self._timeout
            )
        except Unavailable:
            self._pending[prediction_id] = data  # published when Redis is back
            while len(self._pending) > _LOCAL_PENDING:
                self._pending.popitem(last=False)
            return
        self.stats["published"] += 1

    async def _store_and_broadcast(self, prediction_id: str, data: bytes) -> None:
        key = self._key("done", prediction_id)
        if self._sharded:
            await self._redis.set(key, data, ex=self._result_ttl)
            await self._redis.spublish(self._channel, data)
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(key, data, ex=self._result_ttl)
            pipe.publish(self._channel, data)
            await pipe.execute()

    async def _publish_pending(self) -> None:
        """Redis is back: store and broadcast the completions taken while it was away."""
        while self._pending and not self._closed:
            prediction_id, data = next(iter(self._pending.items()))
            try:
                await self._link.call(
                    partial(self._store_and_broadcast, prediction_id, data), self._timeout
                )
            except Unavailable:
                return  # away again: the next return publishes the rest
            self._pending.pop(prediction_id, None)
            self.stats["published"] += 1
            self.stats["republished"] += 1

    async def wait(self, prediction_id: str) -> Mapping[str, Any]:
        """The stored terminal prediction at once, else wait for its publication."""
        if self._closed:
            raise ClientClosedError("the completion bus is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Mapping[str, Any]] = loop.create_future()
        self._waiters.setdefault(prediction_id, []).append(future)
        try:
            await self._ensure_listening()
            await self._check_stored(prediction_id)
            return await future
        finally:
            futures = self._waiters.get(prediction_id)
            if futures is not None and future in futures:
                futures.remove(future)
                if not futures:
                    del self._waiters[prediction_id]

    async def aclose(self) -> None:
        """Stop listening, fail pending waits (:class:`~replicate_async.ClientClosedError`),
        close the connection pool if this bus made it."""
        self._closed = True
        listener, self._listener = self._listener, None
        await stop_task(listener)
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(ClientClosedError("the completion bus was closed"))
        self._waiters.clear()
        with contextlib.suppress(ValueError):
            self._link.on_back.remove(self._publish_pending)
        await self._link.release()
        if self._close_redis:
            await self._redis.aclose()

    # -- internals -----------------------------------------------------------------------

    def _resolve(self, prediction_id: str, prediction: Mapping[str, Any]) -> bool:
        """Resolve this process's waiters for the id; whether there were any."""
        futures = self._waiters.pop(prediction_id, ())
        for future in futures:
            if not future.done():
                future.set_result(prediction)
        return bool(futures)

    async def _check_stored(self, prediction_id: str) -> None:
        key = self._key("done", prediction_id)
        try:
            data = await self._link.call(lambda: self._redis.get(key), self._timeout)
        except Unavailable:
            return
        if data is not None and self._resolve(prediction_id, loads(data)):
            self.stats["stored_hits"] += 1

    async def _ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._settled = asyncio.Event()
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        assert self._settled is not None
        # Wait (bounded) for the first subscription, so a publication from now on reaches
        # us; if Redis is down, the stored-value check after reconnecting covers the gap.
        if not self._settled.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await self._settled.wait()

    async def _listen(self) -> None:
        """Receive completions until closed, reconnecting with back-off (1 s, then 2 s)."""
        delay = 1.0
        while not self._closed:
            pubsub: Any = self._redis.pubsub(ignore_subscribe_messages=True)
            subscribe = pubsub.ssubscribe if self._sharded else pubsub.subscribe
            try:
                await guarded(subscribe(self._channel), self._timeout)
                self.stats["subscribed"] += 1
                await self._recheck_pending()
                self._settle()
                delay = 1.0
                await self._receive(pubsub)
            except REDIS_ERRORS as exc:
                self._settle()
                logger.debug("completion channel lost (%r); reconnecting in %.1fs", exc, delay)
            finally:
                # redis-py < 8.2 leaves PubSub.aclose unannotated: bind it to a typed name so
                # --strict passes on both (no version-dependent `type: ignore`).
                close: Callable[[], Awaitable[None]] = pubsub.aclose
                with contextlib.suppress(*REDIS_ERRORS):
                    await close()
            await self._clock.sleep(delay)
            delay = 2.0

    def _settle(self) -> None:
        if self._settled is not None:
            self._settled.set()

    async def _receive(self, pubsub: Any) -> None:
        """Dispatch completions; PING when quiet, so a silently dead link is noticed (a
        sharded channel is re-subscribed instead: the cluster client has no PING)."""
        quiet = 0
        loop = asyncio.get_running_loop()
        while not self._closed:
            asked = loop.time()
            if self._sharded:
                message = await pubsub.get_sharded_message(
                    ignore_subscribe_messages=True, timeout=_KEEPALIVE
                )
            else:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_KEEPALIVE
                )
            if message is None:
                if loop.time() - asked < _KEEPALIVE / 2:
                    continue  # a subscription notice, skipped: not a quiet period
                quiet += 1
                if quiet > 1 or self._sharded:
                    raise RedisConnectionError("the completion channel stopped answering PING")
                await guarded(pubsub.ping(), self._timeout)
                continue
            quiet = 0
            if message.get("type") not in ("message", "smessage"):
                continue
            try:
                prediction = loads(message["data"])
                prediction_id = str(prediction["id"])
            except (ValueError, KeyError, TypeError):
                logger.warning("ignored a malformed message on %s", self._channel)
                continue
            self.stats["received"] += 1
            self._resolve(prediction_id, prediction)

    async def _recheck_pending(self) -> None:
        """After (re)subscribing, pick up what was stored while we were not listening."""
        for prediction_id in list(self._waiters):
            await self._check_stored(prediction_id)
