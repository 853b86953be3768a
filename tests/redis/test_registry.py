"""InFlightRegistry against a real redis-server and the fake API: orphans get canceled."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from replicate_async.redis import InFlightRegistry
from replicate_async.testing import FakeReplicate

from ._servers import RedisServer, free_port, until

LEASE = 1.0
FAST = {"lease": LEASE, "operation_timeout": 0.2}


def cancels(fake: FakeReplicate) -> list[str]:
    return [
        r.path.split("/")[3]
        for r in fake.requests
        if r.method == "POST" and r.path.endswith("/cancel")
    ]


async def dead_owner(redis: aioredis.Redis, prefix: str, owner: str, runs: dict[str, str]) -> None:
    """What a worker killed mid-run leaves behind: its runs, and a heartbeat long ago."""
    await redis.zadd(f"{{{prefix}}}:owners", {owner: 1000})
    await redis.hset(f"{{{prefix}}}:owner:{owner}:runs", mapping=runs)


async def test_a_dead_workers_runs_are_canceled_once_by_one_of_the_live_ones(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        slow = [await client.predictions.create(version="fake/slow", input={}) for _ in range(3)]
        mine = await client.predictions.create(version="fake/slow", input={})
        connection = aioredis.Redis.from_url(redis_server.url)
        await dead_owner(connection, prefix, "dead-worker", {p.id: "" for p in slow})
        sweepers = [
            InFlightRegistry.from_url(redis_server.url, client, prefix=prefix, **FAST)
            for _ in range(3)
        ]
        try:
            for sweeper in sweepers:
                await sweeper.start()
            assert await sweepers[0].sweep() == []  # not fenced in yet: seen for < a lease
            async with sweepers[0].track(mine):
                await until(lambda: len(cancels(fake)) >= 3)
                await asyncio.sleep(2 * LEASE)  # time for a wrong second cancel
                assert sorted(cancels(fake)) == sorted(p.id for p in slow)
                for prediction in slow:
                    assert fake.prediction(prediction.id)["status"] == "canceled"
                assert fake.prediction(mine.id)["status"] == "processing"  # alive: kept
                runs = f"{{{prefix}}}:owner:{sweepers[0].owner}:runs"
                assert await connection.hkeys(runs) == [mine.id.encode()]
            assert await connection.hlen(runs) == 0
            assert await connection.zscore(f"{{{prefix}}}:owners", "dead-worker") is None
            assert sum(s.stats["canceled"] for s in sweepers) == 3
        finally:
            for sweeper in sweepers:
                await sweeper.aclose()
            await connection.aclose()
        assert fake.prediction(mine.id)["status"] == "processing"  # it left the block first
    assert any("lapsed worker dead-worker" in r.getMessage() for r in caplog.records)


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
        runs = f"{{{prefix}}}:owner:closing:runs"
        assert float(await aredis.hget(runs, prediction.id)) == pytest.approx(deadline)
        assert 0 < await aredis.pttl(runs) <= 86_400_000  # every key has a TTL
        assert 0 < await aredis.pttl(f"{{{prefix}}}:owners") <= 86_400_000
        await registry.aclose()
        assert cancels(fake) == [prediction.id]
        assert await aredis.exists(runs) == 0
        assert await aredis.zscore(f"{{{prefix}}}:owners", "closing") is None


async def test_deadlines_of_any_number_type_are_stored_as_plain_floats(
    aredis: aioredis.Redis, prefix: str
) -> None:
    class Float64(float):  # numpy >= 2's float64 reprs as "np.float64(...)"
        def __repr__(self) -> str:
            return f"np.float64({float(self)!r})"

    async with FakeReplicate() as fake, fake.client() as client:
        registry = InFlightRegistry(aredis, client, prefix=prefix, owner="typed")
        await registry.add("p_decimal", deadline=Decimal("2000000000.5"))  # type: ignore[arg-type]
        await registry.add("p_float64", deadline=Float64(2000000000.25))
        with pytest.raises(TypeError, match="deadline"):
            await registry.add("p_text", deadline="soon")  # type: ignore[arg-type]
        stored = await aredis.hgetall(f"{{{prefix}}}:owner:typed:runs")
        assert stored == {b"p_decimal": b"2000000000.5", b"p_float64": b"2000000000.25"}
        registry._tracked.clear()  # nothing to cancel on close
        await registry.aclose()


async def test_runs_past_their_deadline_are_dropped_and_unreadable_ones_canceled(
    aredis: aioredis.Redis, prefix: str
) -> None:
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        poisoned = await client.predictions.create(version="fake/slow", input={})
        runs = {
            "p_expired": repr(time.time() - 5),
            poisoned.id: "Decimal('1e10')",  # written by an older version with repr()
        }
        await dead_owner(aredis, prefix, "old", runs)
        key = f"{{{prefix}}}:owner:old:runs"

        async def forgotten() -> bool:
            return await aredis.exists(key) == 0

        async with InFlightRegistry(aredis, client, prefix=prefix, **FAST):
            await until(lambda: cancels(fake) == [poisoned.id])
            await until(lambda: fake.prediction(poisoned.id)["status"] == "canceled")
            # The sweep forgets the dead owner's runs after their cancels land: a step later.
            await until(forgotten)
        assert cancels(fake) == [poisoned.id]  # once, and the expired run not at all


def test_bad_arguments_are_refused(aredis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="lease"):
        InFlightRegistry(aredis, None, lease=0)
    with pytest.raises(ValueError, match="operation_timeout"):
        InFlightRegistry(aredis, None, lease=1, operation_timeout=0.5)
    with pytest.raises(ValueError, match="prefix"):
        InFlightRegistry(aredis, None, prefix="{x}")


async def test_a_worker_rewrites_its_runs_after_redis_restarts_empty(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    connection = aioredis.Redis.from_url(own_redis.url)
    registry = InFlightRegistry(connection, None, prefix=prefix, owner="me", **FAST)
    runs = f"{{{prefix}}}:owner:me:runs"
    try:
        await registry.start()
        await registry.add("p1")
        own_redis.stop()
        own_redis.start()
        fresh = aioredis.Redis.from_url(own_redis.url)
        await until(lambda: _equals(fresh.hkeys(runs), [b"p1"]), 10)
        assert await fresh.zscore(f"{{{prefix}}}:owners", "me") is not None
        await fresh.aclose()
    finally:
        await registry.aclose()
        await connection.aclose()
    # A restart is no reason for this worker to doubt itself (no "heartbeat lapsed").
    assert not any("lapsed" in r.getMessage() for r in caplog.records)


async def test_without_redis_tracking_goes_on_and_closing_still_cancels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        prediction = await client.predictions.create(version="fake/slow", input={})
        async with asyncio.timeout(30):  # a hang guard
            async with InFlightRegistry(dead, client, lease=1.0, operation_timeout=0.2) as reg:
                await reg.add(prediction)
                assert reg.in_flight == {prediction.id}
        assert cancels(fake) == [prediction.id]
    await dead.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "replicate_async.redis"]
    assert len(messages) == 1
    assert "not swept" in messages[0]


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_a_run_whose_cancel_keeps_failing_is_given_up_after_three_tries(
    aredis: aioredis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    async with FakeReplicate(slow_duration=60) as fake, fake.client() as client:
        stuck = await client.predictions.create(version="fake/slow", input={})
        fake.faults.add("/v1/predictions/*/cancel", method="POST", status=400, times=100)
        await dead_owner(aredis, prefix, "stubborn", {stuck.id: ""})
        async with InFlightRegistry(aredis, client, prefix=prefix, **FAST) as registry:
            await until(lambda: registry.stats["gave_up"] == 1)
            await asyncio.sleep(2 * LEASE)  # no fourth try
        assert cancels(fake) == [stuck.id] * 3
        assert registry.stats["canceled"] == 0
        assert await aredis.exists(f"{{{prefix}}}:owner:stubborn:runs") == 0
        assert await aredis.zscore(f"{{{prefix}}}:owners", "stubborn") is None
    assert any("gave up canceling" in r.getMessage() for r in caplog.records)
