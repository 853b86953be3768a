"""Fixtures for the workflow tests: the SDK against the fake server, over real sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from replicate_async import AsyncReplicate, PollPolicy
from replicate_async.testing import FakeReplicate

#: Fast, jitter-free polling so tests are quick and their request counts exact.
FAST_POLL = PollPolicy(initial=0.02, factor=2.0, maximum=0.1, jitter=0.0)


@pytest.fixture
async def client(replicate_fake: FakeReplicate) -> AsyncIterator[AsyncReplicate]:
    """An SDK client for the fake, polling fast (overrides the mocked-API ``client``)."""
    async with replicate_fake.client(poll=FAST_POLL) as c:
        yield c


#: Seeded predictions are older than this; every one a test creates is newer.
SEED_HORIZON = datetime(2026, 1, 1, tzinfo=UTC)


async def newest_prediction_id(client: AsyncReplicate) -> str | None:
    """The id of the newest prediction a test created (``GET /predictions``), if any."""
    newest = await client.predictions.list(created_after=SEED_HORIZON).collect(limit=1)
    return newest[0].id if newest else None


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on ``127.0.0.1`` (a free port) and yield its origin URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def headers_of(fake: FakeReplicate, method: str, path: str) -> list[dict[str, str]]:
    """The (lower-cased) headers of every recorded request matching ``method path``."""
    return [r.headers for r in fake.requests_matching(method, path)]


def json_bodies(fake: FakeReplicate, method: str, path: str) -> list[Any]:
    """The JSON bodies of every recorded request matching ``method path``."""
    return [r.json() for r in fake.requests_matching(method, path)]
