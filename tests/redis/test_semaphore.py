"""FleetSemaphore against a real redis-server: a fleet-wide cap, leases, the fallback."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis

from replicate_async.redis import FleetSemaphore

from ._servers import RedisServer, free_port, until


async def test_never_more_than_the_limit_across_processes(
    redis_server: RedisServer, prefix: str
) -> None:
    # Three semaphores with their own pools stand for three processes.
    semaphores = [
        FleetSemaphore.from_url(redis_server.url, 3, prefix=prefix, poll_max=0.05) for _ in range(3)
    ]
    inside = peak = done = 0

    async def job(semaphore: FleetSemaphore) -> None:
        nonlocal inside, peak, done
        async with semaphore.slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.02)
            inside -= 1
            done += 1

    try:
        async with asyncio.timeout(60):  # a hang guard
            await asyncio.gather(*(job(semaphores[i % 3]) for i in range(30)))
        key = f"{{{prefix}}}:semaphore:predictions"
        holders = await semaphores[0]._redis.zcard(key)
    finally:
        for semaphore in semaphores:
            await semaphore.aclose()
    assert done == 30
    assert peak == 3
    assert holders == 0


async def test_a_dead_holders_slot_comes_back_when_its_lease_lapses(
    aredis: aioredis.Redis, prefix: str
) -> None:
    key = f"{{{prefix}}}:semaphore:predictions"
    await aredis.zadd(key, {"dead-process-token": int(time.time() * 1000) + 300})
    semaphore = FleetSemaphore(aredis, 1, prefix=prefix, poll_max=0.05)
    try:
        async with asyncio.timeout(30):
            token = await semaphore.acquire()
        assert await aredis.zrange(key, 0, -1) == [token.encode()]
        await semaphore.release(token)
        assert await aredis.zcard(key) == 0
    finally:
        await semaphore.aclose()


async def test_held_slots_are_renewed(aredis: aioredis.Redis, prefix: str) -> None:
    semaphore = FleetSemaphore(aredis, 1, prefix=prefix, lease=0.8)
    other = FleetSemaphore(aredis, 1, prefix=prefix, lease=0.8, poll_max=0.05)
    try:
        token = await semaphore.acquire()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2.5):  # three leases: renewed meanwhile
                await other.acquire()
        await semaphore.release(token)
        async with asyncio.timeout(30):
            await other.release(await other.acquire())
    finally:
        await semaphore.aclose()
        await other.aclose()


async def test_unreachable_redis_limits_this_process_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    semaphore = FleetSemaphore.from_url(f"redis://127.0.0.1:{free_port()}/0", 2)
    try:
        async with asyncio.timeout(30):
            first, second = await semaphore.acquire(), await semaphore.acquire()
            third = asyncio.ensure_future(semaphore.acquire())
            await asyncio.sleep(0.05)
            assert not third.done()
            await semaphore.release(first)
            await semaphore.release(await third)
            await semaphore.release(second)
    finally:
        await semaphore.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "replicate_async.redis"]
    assert len(messages) == 1
    assert "concurrency per process" in messages[0]


def test_bad_arguments_are_refused(aredis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="limit"):
        FleetSemaphore(aredis, 0)
    with pytest.raises(ValueError, match="lease"):
        FleetSemaphore(aredis, 1, lease=0)


async def test_a_slot_whose_lease_lapsed_is_no_longer_held(
    aredis: aioredis.Redis, prefix: str
) -> None:
    semaphore = FleetSemaphore(aredis, 2, prefix=prefix, lease=0.3)
    try:
        token = await semaphore.acquire()
        await until(lambda: aredis.exists(f"{{{prefix}}}:semaphore:predictions:marker"), 10)
        # As if this process stalled past its lease and another took the slot over.
        await aredis.zrem(f"{{{prefix}}}:semaphore:predictions", token)
        await until(lambda: semaphore.held == 0, 10)
        assert semaphore.stats["lost"] == 1
        await semaphore.release(token)  # harmless: already gone
    finally:
        await semaphore.aclose()
