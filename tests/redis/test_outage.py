"""How one process decides between Redis and its local paths: one outage state per Redis,
shared by every piece, a background probe, and load that is never taken for an outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from replicate_async import WebhookWaiter
from replicate_async.redis import FleetSemaphore, RedisCompletionBus, RedisRateLimiter
from replicate_async.redis._common import Link, Unavailable, guarded
from replicate_async.webhooks import sign

from ._servers import RedisServer, until

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "replicate_async.redis"]


@contextlib.contextmanager
def paused(server: RedisServer) -> Iterator[None]:
    """Redis stopped with SIGSTOP: connections are accepted, nothing is answered."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def test_one_outage_is_one_warning_then_local_at_once_until_a_probe_sees_it_back(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="replicate_async.redis")
    connection = aioredis.Redis.from_url(own_redis.url, socket_connect_timeout=0.5)
    link = Link.shared(connection)
    back: list[bool] = []

    async def on_back() -> None:
        back.append(True)

    link.on_back.append(on_back)
    try:
        assert await link.call(connection.ping, 1.0)
        own_redis.stop()
        with pytest.raises(Unavailable):
            await link.call(connection.ping, 1.0)
        assert link.down
        for _ in range(20):  # local at once: Redis is not even asked
            with pytest.raises(Unavailable):
                await link.call(connection.ping, 1.0)
        assert link.stats == {"outages": 1, "local_calls": 20}
        # Every piece of the process built on the same Redis shares that state.
        limiter = RedisRateLimiter(aioredis.Redis.from_url(own_redis.url), close_redis=True)
        assert not limiter.using_redis
        await limiter.aclose()
        own_redis.start()
        await until(lambda: not link.down, 30)
        assert back == [True]
        assert await link.call(connection.ping, 1.0)
    finally:
        await link.release()
        await connection.aclose()
    assert [(r.levelname, r.getMessage()[:24]) for r in records(caplog)] == [
        ("WARNING", "Redis unreachable (Conne"),
        ("INFO", "Redis reachable again af"),
    ]


async def test_a_crowd_on_a_small_pool_is_not_an_outage(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # redis-py raises "Too many connections" past its pool: that is load, not an outage.
    caplog.set_level(logging.INFO, logger="replicate_async.redis")
    small = aioredis.Redis.from_url(redis_server.url, max_connections=4)
    link = Link.shared(small)
    try:
        async with asyncio.timeout(60):
            replies = await asyncio.gather(*(link.call(small.ping, 1.0) for _ in range(500)))
    finally:
        await link.release()
        await small.aclose()
    assert replies == [True] * 500
    assert link.stats["outages"] == 0
    assert records(caplog) == []


async def test_a_paused_redis_delays_only_the_first_webhook(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    timeout = 1.0
    bus = RedisCompletionBus.from_url(own_redis.url, prefix=prefix, operation_timeout=timeout)
    waiter = WebhookWaiter(SECRET, listen=False, public_url="http://w/hook", bus=bus)
    answered: list[float] = []
    try:
        assert await bus.first_delivery("warm-up")  # connected, Redis healthy
        with paused(own_redis):
            for i in range(11):
                body = f'{{"id": "p{i}", "status": "succeeded", "output": "x"}}'.encode()
                now = int(time.time())
                headers = {
                    "webhook-id": f"msg-{i}",
                    "webhook-timestamp": str(now),
                    "webhook-signature": sign(body, SECRET, msg_id=f"msg-{i}", timestamp=now),
                }
                started = time.monotonic()
                assert await waiter.handle(headers, body) == (200, "ok")
                answered.append(time.monotonic() - started)
        # Redis back: what was taken meanwhile is published for the other workers.
        await until(lambda: bus.stats["republished"] == 11, 30)
        reader = aioredis.Redis.from_url(own_redis.url)
        try:
            assert await reader.exists(*(f"{{{prefix}}}:done:p{i}" for i in range(11))) == 11
        finally:
            await reader.aclose()
    finally:
        await waiter.aclose()
        await bus.aclose()
    # The first delivery waited for one operation timeout (the call that found Redis
    # paused); the next 10 went local at once.
    assert answered[0] <= timeout + 0.5, answered
    assert max(answered[1:]) <= 0.5, answered
    assert len([r for r in records(caplog) if "unreachable" in r.getMessage()]) == 1


async def test_waiters_queued_locally_rejoin_the_fleet_budget(own_redis: RedisServer) -> None:
    semaphore = FleetSemaphore.from_url(own_redis.url, 1, operation_timeout=0.5)
    try:
        async with asyncio.timeout(60):
            first = await semaphore.acquire()
            assert semaphore.held == 1
            own_redis.stop()
            second = await semaphore.acquire()  # Redis is away: the local slot
            assert second == "local"
            queued = asyncio.ensure_future(semaphore.acquire())  # waits locally
            await asyncio.sleep(0.3)
            assert not queued.done()
            own_redis.start()  # empty: the fleet's slot is free in Redis again
            token = await queued
            assert token != "local"  # it rejoined the fleet's budget
            await semaphore.release(token)
            await semaphore.release(second)
            await semaphore.release(first)
    finally:
        await semaphore.aclose()


async def test_cancelling_a_task_waiting_on_redis_always_cancels_it(
    aredis: aioredis.Redis,
) -> None:
    # redis-py can return a result to a task cancelled as the reply arrives (Python 3.11's
    # asyncio.wait_for); every Redis call here goes through guarded(), which re-raises it.
    rng = random.Random(7)
    lost = 0
    for _ in range(300):  # bounded
        task = asyncio.ensure_future(guarded(aredis.get("key"), 5.0))
        for _ in range(rng.randint(1, 6)):
            await asyncio.sleep(0)
        requested = task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        lost += requested and not task.cancelled()
    assert lost == 0
