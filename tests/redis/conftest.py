"""A real ``redis-server`` for the whole session (skipped, with the reason, when absent)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from ._servers import MISSING, RedisCluster, RedisServer, redis_executable

redis = pytest.importorskip("redis", reason="redis-py is not installed (extra [redis])")
import redis.asyncio as aioredis  # noqa: E402


def _executable() -> str:
    executable = redis_executable()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(f"{MISSING}; CI must run these tests, not skip them")
        pytest.skip(MISSING)
    return executable


def _redis() -> Iterator[RedisServer]:
    server = RedisServer(_executable())
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (tests keep apart by key prefix)."""
    yield from _redis()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A local 3-master Redis Cluster for the session (tests keep apart by key prefix)."""
    cluster = RedisCluster(_executable())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (to stop and restart mid-run)."""
    yield from _redis()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def aredis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()
