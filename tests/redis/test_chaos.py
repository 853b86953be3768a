"""The faults managed Redis really has, against real worker processes and a real server:
stalls, poisoned entries, killed connections, a restart with no data, a killed worker.

Leases are 2 s here (30 s by default) so every test takes seconds; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from replicate_async import AsyncReplicate
from replicate_async.redis import FleetSemaphore

from ._servers import FakeProcess, RedisServer, Worker, until

LEASE = 2.0


@pytest.fixture
def slow_fake() -> Iterator[FakeProcess]:
    fake = FakeProcess(slow_duration=120)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
async def reader(own_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(own_redis.url, retry_on_error=[ConnectionError])
    try:
        yield client
    finally:
        await client.aclose()


def tracked(fake: FakeProcess, redis: RedisServer, prefix: str, count: int = 2) -> dict[str, Any]:
    return {
        "mode": "tracked",
        "base_url": fake.base_url,
        "token": fake.token,
        "redis_url": redis.url,
        "prefix": prefix,
        "count": count,
        "lease": LEASE,
        "operation_timeout": 0.3,
    }


async def start(configs: list[dict[str, Any]]) -> tuple[list[Worker], list[dict[str, Any]]]:
    workers = [await Worker.start({**config, "index": i}) for i, config in enumerate(configs)]
    return workers, [await worker.line() for worker in workers]


async def stop(workers: list[Worker]) -> list[str]:
    """Let the live workers finish (their own runs are canceled by their closing); their
    stderr."""
    errors = []
    for worker in workers:
        if worker.process.returncode is None and worker.process.stdin is not None:
            _, err = await worker.finish()
            errors.append(err)
    for worker in workers:
        worker.kill()
        await worker.process.wait()
    return errors


def cancels(fake: FakeProcess) -> dict[str, int]:
    found: dict[str, int] = fake.command(op="summary")["cancels"]
    return found


async def test_a_stall_longer_than_the_lease_cancels_only_the_worker_killed_during_it(
    slow_fake: FakeProcess, own_redis: RedisServer, prefix: str
) -> None:
    # Four workers, each with runs in flight. First Redis stalls (DEBUG SLEEP) for a
    # lease + 1 s: nobody is canceled. Then it is down for a lease + 1 s and comes back
    # from its snapshot (as a failover to a replica does: every heartbeat in it is older
    # than the lease), and worker 0 is killed meanwhile. Liveness by expiry made the first
    # worker back cancel every peer's runs; fenced, only worker 0's are canceled, once.
    workers, lines = await start([tracked(slow_fake, own_redis, prefix)] * 4)
    ids = [line["ids"] for line in lines]
    try:
        await asyncio.sleep(1.5 * LEASE)  # every worker fenced in: sweeping is allowed
        await own_redis.cli("DEBUG", "SLEEP", str(LEASE + 1))
        await asyncio.sleep(1.5 * LEASE)
        assert cancels(slow_fake) == {}
        await own_redis.cli("SAVE")
        own_redis.stop()
        workers[0].kill()
        await asyncio.sleep(LEASE + 1)
        own_redis.start()  # from the snapshot
        back = time.time()
        await until(lambda: set(ids[0]) <= set(cancels(slow_fake)), 6 * LEASE)
        await asyncio.sleep(1.5 * LEASE)  # room for a wrong (or second) cancel
        summary = slow_fake.command(op="summary")
    finally:
        await stop(workers[1:])
    assert summary["cancels"] == dict.fromkeys(ids[0], 1)
    assert min(summary["cancel_times"][pid] for pid in ids[0]) >= back


async def test_poisoned_deadlines_neither_stop_heartbeats_nor_block_the_sweep(
    slow_fake: FakeProcess, own_redis: RedisServer, prefix: str, reader: aioredis.Redis
) -> None:
    # A dead owner's runs carry deadlines an older version stored with repr(): a Decimal
    # and a numpy float64. The sweeping worker used to die on float() of them, its own
    # heartbeat with it, and then its runs were canceled by its peers.
    async with AsyncReplicate(slow_fake.token, base_url=slow_fake.base_url) as client:
        orphans = [await client.predictions.create(version="fake/slow", input={}) for _ in "ab"]
    space = f"{{{prefix}}}"
    await reader.zadd(f"{space}:owners", {"dead": 1000})
    poisoned = {orphans[0].id: "Decimal('1e10')", orphans[1].id: "np.float64(1e10)"}
    await reader.hset(f"{space}:owner:dead:runs", mapping=poisoned)
    workers, lines = await start([tracked(slow_fake, own_redis, prefix)] * 3)
    owners = [line["owner"] for line in lines]
    live_ids = {pid for line in lines for pid in line["ids"]}
    try:
        oldest_beat = 0.0
        for _ in range(int(3 * LEASE / 0.25)):  # three leases, sampled
            seconds, micros = await reader.time()
            now = seconds * 1000 + micros // 1000
            beats = [await reader.zscore(f"{space}:owners", owner) for owner in owners]
            oldest_beat = max([oldest_beat, *((now - beat) / 1000 for beat in beats if beat)])
            assert None not in beats
            await asyncio.sleep(0.25)
        await until(lambda: set(poisoned) <= set(cancels(slow_fake)), 4 * LEASE)
        summary = slow_fake.command(op="summary")
    finally:
        await stop(workers)
    assert oldest_beat < LEASE  # every worker kept beating
    assert summary["cancels"] == dict.fromkeys(poisoned, 1)  # nothing of the live ones
    assert not live_ids & set(summary["cancels"])


async def test_killed_connections_every_second_declare_no_worker_dead(
    slow_fake: FakeProcess, own_redis: RedisServer, prefix: str
) -> None:
    workers, _ = await start([tracked(slow_fake, own_redis, prefix)] * 3)
    try:
        await asyncio.sleep(1.5 * LEASE)
        for _ in range(5):  # 5 s of CLIENT KILL TYPE normal, once a second
            await own_redis.cli("CLIENT", "KILL", "TYPE", "normal")
            await asyncio.sleep(1.0)
        await asyncio.sleep(LEASE)
        summary = slow_fake.command(op="summary")
    finally:
        errors = await stop(workers)
    assert summary["cancels"] == {}
    assert not any("lapsed worker" in err for err in errors), errors  # nobody judged dead


async def test_after_redis_restarts_empty_the_semaphore_limit_holds_within_a_lease(
    own_redis: RedisServer, prefix: str
) -> None:
    # Two semaphores on their own pools stand for two processes. A holds every slot;
    # Redis restarts with no data. B runs short jobs, one slot at a time: it may get in
    # before A's next renewal, but A re-asserts its slots then, so from one lease after
    # the restart on B gets no slot.
    options = {"prefix": prefix, "lease": LEASE, "poll_max": 0.05, "operation_timeout": 0.3}
    a = FleetSemaphore.from_url(own_redis.url, 3, **options)  # type: ignore[arg-type]
    b = FleetSemaphore.from_url(own_redis.url, 3, **options)  # type: ignore[arg-type]
    taken: list[float] = []

    async def short_jobs() -> None:
        while True:
            token = await b.acquire()
            taken.append(time.monotonic())
            await asyncio.sleep(0.05)
            await b.release(token)

    try:
        held = [await a.acquire() for _ in range(3)]
        own_redis.stop()
        own_redis.start()
        restarted = time.monotonic()
        grabbing = asyncio.ensure_future(short_jobs())
        await asyncio.sleep(2 * LEASE)
        grabbing.cancel()
        assert a.held == 3
        for token in held:
            await a.release(token)
    finally:
        await a.aclose()
        await b.aclose()
    late = [round(t - restarted, 2) for t in taken if t - restarted > LEASE]
    assert late == []


async def test_a_killed_fleet_workers_runs_of_every_kind_are_canceled_once(
    slow_fake: FakeProcess, own_redis: RedisServer, prefix: str
) -> None:
    # run(), stream() and WebhookWaiter.run() through AsyncReplicate(fleet=...): the
    # client's run observer records each; kill -9 of the worker leaves them to a peer.
    config = {
        "mode": "fleet_runs",
        "base_url": slow_fake.base_url,
        "token": slow_fake.token,
        "redis_url": own_redis.url,
        "prefix": prefix,
        "lease": LEASE,
    }
    workers, lines = await start([config, config])
    assert all(line["started"] for line in lines)
    try:
        await asyncio.sleep(1.5 * LEASE)  # the survivor is fenced in
        inputs = slow_fake.command(op="inputs")
        victims = {pid for pid, text in inputs.items() if text.startswith("w0-")}
        assert len(victims) == 3
        killed = time.time()
        workers[0].kill()
        await until(lambda: victims <= set(cancels(slow_fake)), 4 * LEASE)
        await asyncio.sleep(LEASE)  # room for a second cancel
        summary = slow_fake.command(op="summary")
    finally:
        await stop(workers[1:])
    assert {pid: summary["cancels"][pid] for pid in victims} == dict.fromkeys(victims, 1)
    assert max(summary["cancel_times"][pid] for pid in victims) - killed <= LEASE + 2
