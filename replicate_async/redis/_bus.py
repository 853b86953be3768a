"""A completion bus in Redis: any worker takes a webhook delivery, the waiting one resolves."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from .._clock import SYSTEM_CLOCK, Clock
from .._converter import dumps, loads
from ..exceptions import ClientClosedError
from ._common import (
    DEFAULT_PREFIX,
    REDIS_ERRORS,
    Outage,
    connect,
    guarded,
    guarded_retry,
    logger,
    stop_task,
)

__all__ = ["RedisCompletionBus"]

#: Seconds without a message before the completion channel is PINGed (and then, with no
#: answer for as long again, reconnected).
_KEEPALIVE = 15.0
#: Webhook ids remembered in-process for de-duplication while Redis is unreachable.
_LOCAL_SEEN = 10_000


class RedisCompletionBus:
    """A :class:`~replicate_async._bus.CompletionBus` shared by processes, for
    :class:`~replicate_async.WebhookWaiter`.

    ``WebhookWaiter(..., bus=RedisCompletionBus.from_url(url))`` in every worker: the
    worker that receives a delivery de-duplicates it fleet-wide (``SET NX EX`` on the
    ``webhook-id``, kept ``dedup_ttl`` seconds), stores the terminal prediction for
    ``result_ttl`` seconds (a delivery can beat the create's own response) and publishes
    it on one channel; every process listens on that channel over a single pub/sub
    connection and resolves its own waiters. A waiter first looks for the stored
    prediction, so nothing published before it started waiting is missed.

    If Redis is unreachable, deliveries still resolve waiters in the receiving process,
    de-duplication falls back to this process, one warning is logged, and waiters in
    other processes finish through the waiter's safety poll. After the pub/sub
    connection comes back, every pending waiter looks for its stored prediction again.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
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
        self._channel = f"{prefix}:completed"
        self._result_ttl = int(result_ttl)
        self._dedup_ttl = int(dedup_ttl)
        self._timeout = operation_timeout
        self._waiters: dict[str, list[asyncio.Future[Mapping[str, Any]]]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._listener: asyncio.Task[None] | None = None
        # Set once the first subscription attempt settled (subscribed, or Redis failed).
        self._settled: asyncio.Event | None = None
        self._closed = False
        self._outage = Outage("webhook deliveries resolve waiters in this process only", clock)
        #: Counters: deliveries published, completions received from the channel, waits
        #: answered from the stored value, (re)subscriptions made.
        self.stats: dict[str, int] = {
            "published": 0,
            "received": 0,
            "stored_hits": 0,
            "subscribed": 0,
        }

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCompletionBus:
        """A bus with its own connection pool to ``url`` (closed by :meth:`aclose`)."""
        return cls(connect(url, socket_timeout=None), close_redis=True, **options)

    def _key(self, what: str, ident: str) -> str:
        return f"{self._prefix}:{what}:{ident}"

    # -- the CompletionBus protocol ----------------------------------------------------

    async def first_delivery(self, webhook_id: str) -> bool:
        """True the first time any process of the fleet sees this ``webhook-id``."""
        if webhook_id in self._seen:
            return False
        self._seen[webhook_id] = None
        while len(self._seen) > _LOCAL_SEEN:
            self._seen.popitem(last=False)
        try:
            key = self._key("webhook", webhook_id)
            first = await guarded_retry(
                lambda: self._redis.set(key, b"1", nx=True, ex=self._dedup_ttl), self._timeout
            )
        except REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return True
        self._outage.succeeded()
        return bool(first)

    async def publish(self, prediction: Mapping[str, Any]) -> None:
        """Resolve local waiters, store the prediction with a TTL and broadcast it."""
        prediction_id = str(prediction["id"])
        self._resolve(prediction_id, prediction)
        data = dumps(dict(prediction))
        key = self._key("done", prediction_id)

        async def store_and_broadcast() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(key, data, ex=self._result_ttl)
                pipe.publish(self._channel, data)
                await pipe.execute()

        try:
            await guarded_retry(store_and_broadcast, self._timeout)
        except REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return
        self._outage.succeeded()
        self.stats["published"] += 1

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
        try:
            key = self._key("done", prediction_id)
            data = await guarded_retry(lambda: self._redis.get(key), self._timeout)
        except REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return
        self._outage.succeeded()
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
        """Receive completions until closed, reconnecting with back-off (1 s .. 30 s)."""
        delay = 1.0
        while not self._closed:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await guarded(pubsub.subscribe(self._channel), self._timeout)
                self.stats["subscribed"] += 1
                await self._recheck_pending()
                self._settle()
                delay = 1.0
                await self._receive(pubsub)
            except REDIS_ERRORS as exc:
                self._outage.failed(exc)
                self._settle()
                logger.debug("completion channel lost; reconnecting in %.1fs", delay)
            finally:
                # redis-py < 8.2 leaves PubSub.aclose unannotated: bind it to a typed name so
                # --strict passes on both (no version-dependent `type: ignore`).
                close: Callable[[], Awaitable[None]] = pubsub.aclose
                with contextlib.suppress(*REDIS_ERRORS):
                    await close()
            await self._clock.sleep(delay)
            delay = min(delay * 2.0, 30.0)

    def _settle(self) -> None:
        if self._settled is not None:
            self._settled.set()

    async def _receive(self, pubsub: PubSub) -> None:
        """Dispatch completions; PING when quiet, so a silently dead link is noticed."""
        quiet = 0
        while not self._closed:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_KEEPALIVE)
            if message is None:
                quiet += 1
                if quiet > 1:
                    raise RedisConnectionError("the completion channel stopped answering PING")
                await guarded(pubsub.ping(), self._timeout)
                continue
            quiet = 0
            if message.get("type") != "message":
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
        self._outage.succeeded()
        for prediction_id in list(self._waiters):
            await self._check_stored(prediction_id)
