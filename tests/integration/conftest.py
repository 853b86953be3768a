"""Fixtures of the integration tests: the fake API over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from replicate_async.testing import FakeReplicate


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    """A started :class:`FakeReplicate` on a free loopback port."""
    async with FakeReplicate() as server:
        yield server
