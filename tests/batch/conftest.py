"""Batch fixtures: a fake over real sockets, and a ledger in each store (SQLite file and
Redis, the latter on a redis-server of this module's own)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from replicate_async import AsyncReplicate, Throttle
from replicate_async.testing import FakeReplicate

from ..redis._servers import RedisServer
from ..redis.conftest import _redis as start_redis


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for this module (skipped with the reason where there is none)."""
    yield from start_redis()


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate(slow_duration=30.0) as server:
        server.set_model_behaviour("fake/echo", duration=0.02)
        yield server


@pytest.fixture
async def client(fake: FakeReplicate) -> AsyncIterator[AsyncReplicate]:
    limiter = Throttle(create_per_minute=1e6, other_per_minute=1e6)
    async with fake.client(limiter=limiter) as c:
        yield c


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new ledger: a SQLite path, or a ``redis://`` URL with a prefix of its own."""
    if request.param == "sqlite":
        return str(tmp_path / "batch.db")
    server: RedisServer = request.getfixturevalue("redis_server")
    return f"{server.url}#batch-{uuid.uuid4().hex[:8]}"
