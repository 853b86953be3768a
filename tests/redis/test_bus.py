"""RedisCompletionBus against a real redis-server: de-dup, store-then-publish, fallbacks."""

from __future__ import annotations

import asyncio
import logging
import signal

import pytest
import redis.asyncio as aioredis

from replicate_async import ClientClosedError
from replicate_async._workflows.bus import CompletionBus
from replicate_async.redis import RedisCompletionBus

from ._servers import RedisServer, free_port


async def subscribed(bus: RedisCompletionBus) -> None:
    for _ in range(1000):  # bounded: 10 s
        if bus.stats["subscribed"]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the bus never subscribed")


def done(prediction_id: str, status: str = "succeeded") -> dict[str, object]:
    return {"id": prediction_id, "status": status, "output": ["hello"]}


async def test_a_delivery_to_one_worker_resolves_the_waiter_in_another(
    redis_server: RedisServer, prefix: str
) -> None:
    receiver = RedisCompletionBus.from_url(redis_server.url, prefix=prefix)
    waiter = RedisCompletionBus.from_url(redis_server.url, prefix=prefix)
    try:
        async with asyncio.timeout(30):  # a hang guard
            waiting = asyncio.ensure_future(waiter.wait("p1"))
            await subscribed(waiter)
            await receiver.publish(done("p1"))
            assert await waiting == done("p1")
        assert waiter.stats["received"] == 1
        assert receiver.stats["published"] == 1
    finally:
        await receiver.aclose()
        await waiter.aclose()


async def test_a_delivery_before_the_wait_is_found_stored(
    aredis: aioredis.Redis, prefix: str
) -> None:
    receiver = RedisCompletionBus(aredis, prefix=prefix, result_ttl=60)
    late = RedisCompletionBus(aredis, prefix=prefix)
    try:
        await receiver.publish(done("p2", "failed"))
        async with asyncio.timeout(30):
            assert await late.wait("p2") == done("p2", "failed")
        assert late.stats["stored_hits"] == 1
        assert 0 < await aredis.ttl(f"{{{prefix}}}:done:p2") <= 60
    finally:
        await receiver.aclose()
        await late.aclose()


async def test_each_webhook_id_is_first_exactly_once_fleet_wide(
    redis_server: RedisServer, prefix: str
) -> None:
    buses = [RedisCompletionBus.from_url(redis_server.url, prefix=prefix) for _ in range(4)]
    try:
        answers = await asyncio.gather(
            *(bus.first_delivery(f"msg_{i}") for i in range(25) for bus in buses)
        )
        assert sum(answers) == 25
        assert not await buses[0].first_delivery("msg_3")
    finally:
        for bus in buses:
            await bus.aclose()


async def test_unreachable_redis_still_resolves_local_waiters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    bus = RedisCompletionBus.from_url(f"redis://127.0.0.1:{free_port()}/0", operation_timeout=1)
    try:
        async with asyncio.timeout(30):
            waiting = asyncio.ensure_future(bus.wait("p3"))
            await asyncio.sleep(0)
            assert await bus.first_delivery("msg_a")
            assert not await bus.first_delivery("msg_a")  # de-duplicated in this process
            await bus.publish(done("p3"))
            assert await waiting == done("p3")
    finally:
        await bus.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "replicate_async.redis"]
    assert len(messages) == 1
    assert "Redis unreachable" in messages[0]


async def test_waiters_pick_up_what_was_published_while_redis_was_away(
    own_redis: RedisServer, prefix: str
) -> None:
    waiter = RedisCompletionBus.from_url(own_redis.url, prefix=prefix, operation_timeout=1)
    publisher = RedisCompletionBus.from_url(own_redis.url, prefix=prefix, operation_timeout=1)
    try:
        async with asyncio.timeout(40):
            waiting = asyncio.ensure_future(waiter.wait("p4"))
            await subscribed(waiter)
            own_redis.stop()
            own_redis.start()  # empty: the listener reconnects and resubscribes
            await publisher.publish(done("p4"))
            assert await waiting == done("p4")
    finally:
        await waiter.aclose()
        await publisher.aclose()


async def test_close_fails_pending_waits(aredis: aioredis.Redis, prefix: str) -> None:
    bus = RedisCompletionBus(aredis, prefix=prefix)
    assert isinstance(bus, CompletionBus)
    waiting = asyncio.ensure_future(bus.wait("p5"))
    await asyncio.sleep(0.05)
    await bus.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        await waiting
    with pytest.raises(ClientClosedError, match="closed"):
        await bus.wait("p6")


async def test_a_silent_channel_is_pinged_and_a_dead_one_replaced(
    own_redis: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("replicate_async.redis._bus._KEEPALIVE", 0.1)
    waiter = RedisCompletionBus.from_url(own_redis.url, prefix=prefix, operation_timeout=0.5)
    publisher = RedisCompletionBus.from_url(own_redis.url, prefix=prefix)
    assert own_redis.process is not None
    try:
        async with asyncio.timeout(40):
            waiting = asyncio.ensure_future(waiter.wait("p7"))
            await subscribed(waiter)
            await asyncio.sleep(0.5)  # five quiet periods: PINGs answered, no reconnect
            assert waiter.stats["subscribed"] == 1
            own_redis.process.send_signal(signal.SIGSTOP)  # alive, but answers nothing
            await asyncio.sleep(0.6)
            own_redis.process.send_signal(signal.SIGCONT)
            for _ in range(200):  # bounded: 20 s
                if waiter.stats["subscribed"] >= 2:
                    break
                await asyncio.sleep(0.1)
            assert waiter.stats["subscribed"] >= 2  # the silent link was noticed, replaced
            await publisher.publish(done("p7"))
            assert await waiting == done("p7")
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
        await waiter.aclose()
        await publisher.aclose()
