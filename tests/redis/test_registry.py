"""InFlightRegistry against a real redis-server and the fake API: orphans get canceled."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis

from replicate_async.redis import InFlightRegistry
from replicate_async.testing import FakeReplicate

from ._servers import RedisServer, free_port


def cancels(fake: FakeReplicate) -> list[str]:
    return [
        r.path.split("/")[3]
        for r in fake.requests
        if r.method == "POST" and r.path.endswith("/cancel")
    ]


async def dead_owner(redis: aioredis.Redis, prefix: str, owner: str, ids: list[str]) -> None:
    """What a worker killed mid-run leaves behind: its runs, and no heartbeat."""
    await redis.sadd(f"{prefix}:owners", owner)
    await redis.hset(f"{prefix}:owner:{owner}:runs", mapping=dict.fromkeys(ids, ""))


async def test_a_dead_workers_runs_are_canceled_once(
    redis_server: RedisServer, prefix: str
) -> None:
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        slow = [await client.predictions.create(version="fake/slow", input={}) for _ in range(3)]
        mine = await client.predictions.create(version="fake/slow", input={})
        connection = aioredis.Redis.from_url(redis_server.url)
        await dead_owner(connection, prefix, "dead-worker", [p.id for p in slow])
        sweepers = [
            InFlightRegistry.from_url(redis_server.url, client, prefix=prefix, lease=60)
            for _ in range(3)
        ]
        try:
            for sweeper in sweepers:
                await sweeper.start()
            async with sweepers[0].track(mine):
                found = await asyncio.gather(*(s.sweep() for s in sweepers))
                assert sorted(i for ids in found for i in ids) == sorted(p.id for p in slow)
                assert sorted(cancels(fake)) == sorted(p.id for p in slow)
                for prediction in slow:
                    assert fake.prediction(prediction.id)["status"] == "canceled"
                assert fake.prediction(mine.id)["status"] == "processing"  # alive: kept
                assert await connection.hkeys(f"{prefix}:owner:{sweepers[0].owner}:runs") == [
                    mine.id.encode()
                ]
            assert await connection.hlen(f"{prefix}:owner:{sweepers[0].owner}:runs") == 0
            assert b"dead-worker" not in await connection.smembers(f"{prefix}:owners")
        finally:
            for sweeper in sweepers:
                await sweeper.aclose()
            await connection.aclose()
        assert fake.prediction(mine.id)["status"] == "processing"  # it left the block first


async def test_a_lapsed_heartbeat_is_swept_by_the_background_loop(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        prediction = await client.predictions.create(version="fake/slow", input={})
        connection = aioredis.Redis.from_url(redis_server.url)
        await connection.set(f"{prefix}:owner:lapsing:alive", b"1", px=300)
        await dead_owner(connection, prefix, "lapsing", [prediction.id])
        try:
            async with InFlightRegistry(connection, client, prefix=prefix, lease=0.4) as live:
                for _ in range(300):  # bounded: 15 s
                    if cancels(fake):
                        break
                    await asyncio.sleep(0.05)
                assert live.stats["canceled"] == 1
        finally:
            await connection.aclose()
        assert cancels(fake) == [prediction.id]
        assert any("lapsed worker lapsing" in r.getMessage() for r in caplog.records)


async def test_closing_cancels_what_the_worker_still_tracks(
    aredis: aioredis.Redis, prefix: str
) -> None:
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        registry = InFlightRegistry(aredis, client, prefix=prefix, owner="closing")
        await registry.start()
        prediction = await client.predictions.create(version="fake/slow", input={})
        deadline = time.time() + 600
        await registry.add(prediction, deadline=deadline)
        assert registry.in_flight == {prediction.id}
        stored = await aredis.hget(f"{prefix}:owner:closing:runs", prediction.id)
        assert float(stored) == pytest.approx(deadline)
        await registry.aclose()
        assert cancels(fake) == [prediction.id]
        assert await aredis.exists(f"{prefix}:owner:closing:alive") == 0
        assert b"closing" not in await aredis.smembers(f"{prefix}:owners")


async def test_runs_past_their_deadline_are_dropped_not_canceled(
    aredis: aioredis.Redis, prefix: str
) -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        await aredis.sadd(f"{prefix}:owners", "old")
        await aredis.hset(f"{prefix}:owner:old:runs", "p_expired", repr(time.time() - 5))
        async with InFlightRegistry(aredis, client, prefix=prefix, lease=60) as registry:
            assert await registry.sweep() == []
        assert cancels(fake) == []
        assert await aredis.exists(f"{prefix}:owner:old:runs") == 0


def test_bad_arguments_are_refused(aredis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="lease"):
        InFlightRegistry(aredis, None, lease=0)  # type: ignore[arg-type]


async def test_a_worker_learns_its_own_heartbeat_lapsed(
    aredis: aioredis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    async with (
        FakeReplicate() as fake,
        fake.client() as client,
        InFlightRegistry(aredis, client, prefix=prefix, lease=0.3, owner="slow"),
    ):
        await aredis.delete(f"{prefix}:owner:slow:alive")  # as if it stalled past a lease
        for _ in range(200):  # bounded: 10 s
            if any("heartbeat lapsed" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        assert await aredis.exists(f"{prefix}:owner:slow:alive") == 1  # beating again
    assert any("heartbeat lapsed" in r.getMessage() for r in caplog.records)


async def test_without_redis_tracking_goes_on_and_closing_still_cancels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        prediction = await client.predictions.create(version="fake/slow", input={})
        async with asyncio.timeout(30):  # a hang guard
            async with InFlightRegistry(dead, client, lease=1.0) as registry:
                await registry.add(prediction)
                assert registry.in_flight == {prediction.id}
        assert cancels(fake) == [prediction.id]
    await dead.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "replicate_async.redis"]
    assert len(messages) == 1
    assert "not swept" in messages[0]
