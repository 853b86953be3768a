"""Fleet: one object per worker, wired into AsyncReplicate, on a node or a Sentinel master."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from replicate_async import AsyncReplicate, InvalidArgumentError
from replicate_async.redis import Fleet
from replicate_async.testing import FakeReplicate

from ._servers import RedisServer, free_port, until


async def test_a_fleet_paces_the_client_and_records_its_runs(
    redis_server: RedisServer, prefix: str
) -> None:
    async with (
        FakeReplicate(slow_duration=60) as fake,
        Fleet.from_url(redis_server.url, prefix=prefix, lease=2, max_in_flight=2) as fleet,
        AsyncReplicate(fake.token, base_url=fake.base_url, fleet=fleet) as client,
    ):
        assert client.fleet is fleet
        assert fleet.registry.client is client  # it cancels dead peers' runs with it
        prediction = await client.predictions.create(version="fake/slow", input={})
        await fleet.registry.run_created(prediction)  # as the client's run observer does
        assert fleet.semaphore is not None
        async with fleet.semaphore.slot():
            stats = fleet.stats()
        await fleet.registry.run_settled(prediction.id)
        keys = aioredis.Redis.from_url(redis_server.url)
        try:
            assert await keys.exists(f"{{{prefix}}}:rate:create:tat")  # the fleet's limiter
            assert await keys.zscore(f"{{{prefix}}}:owners", fleet.registry.owner)
        finally:
            await keys.aclose()
    assert stats == {
        "redis_up": True,
        "outages": 0,
        "holds": 0,
        "learned_pace": None,
        "in_flight": 1,
        "sweeps": 0,
        "canceled": 0,
        "published": 0,
        "received": 0,
        "held": 1,
    }
    assert fake.prediction(prediction.id)["status"] == "processing"  # settled: not canceled


async def test_a_fleet_brings_its_own_limiter(redis_server: RedisServer) -> None:
    async with Fleet.from_url(redis_server.url) as fleet:
        with pytest.raises(InvalidArgumentError, match="limiter or fleet"):
            AsyncReplicate("r8_x", fleet=fleet, limiter=fleet.limiter)


@pytest.fixture
def sentinel(redis_server: RedisServer) -> Iterator[int]:
    """A Sentinel (``redis-server --sentinel``) watching the session's server as master."""
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-test-"))
    port = free_port()
    config = workdir / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor fleet 127.0.0.1 {redis_server.port} 1\n"
    )
    executable = shutil.which("redis-server") or "redis-server"
    process = subprocess.Popen([executable, str(config), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


async def test_a_fleet_on_a_sentinel_managed_master(
    sentinel: int, prefix: str, redis_server: RedisServer
) -> None:
    watcher = Sentinel([("127.0.0.1", sentinel)], socket_timeout=1.0)
    await until(lambda: _discovers(watcher), 20)
    master = watcher.master_for("fleet")
    try:
        async with FakeReplicate() as fake, Fleet.from_client(master, prefix=prefix) as fleet:
            async with AsyncReplicate(fake.token, base_url=fake.base_url, fleet=fleet) as client:
                await client.predictions.create(version="fake/echo", input={"text": "hi"})
            waiting = asyncio.ensure_future(fleet.bus.wait("p1"))
            await asyncio.sleep(0.1)
            await fleet.bus.publish({"id": "p1", "status": "succeeded"})
            assert (await asyncio.wait_for(waiting, 10))["status"] == "succeeded"
            assert fleet.stats()["outages"] == 0
        keys = aioredis.Redis.from_url(redis_server.url)
        try:
            assert await keys.exists(f"{{{prefix}}}:rate:create:tat")
        finally:
            await keys.aclose()
    finally:
        await master.aclose()
        for connection in watcher.sentinels:
            await connection.aclose()


async def _discovers(watcher: Sentinel) -> bool:
    try:
        return bool(await watcher.discover_master("fleet"))
    except Exception:
        return False
