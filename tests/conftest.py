"""Shared fixtures: recorded API examples, and mocked or real servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from aioresponses import aioresponses

from replicate_async import AsyncReplicate, RetryPolicy
from replicate_async.testing import ManualClock

from ._aioresponses_shim import install
from .helpers import API, TOKEN

install()

# Every server of the suite is on loopback, and clients read proxies from the environment
# (trust_env): a developer's HTTP(S)_PROXY must not capture the suite's requests.
_no_proxy = [h for h in os.environ.get("no_proxy", os.environ.get("NO_PROXY", "")).split(",") if h]
# Both spellings: urllib (which aiohttp asks) prefers the lower-case one when both are set.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(
    dict.fromkeys([*_no_proxy, "127.0.0.1", "localhost", "::1"])
)


@pytest.fixture
def clock() -> ManualClock:
    """The tests' virtual clock, self-advancing: every sleep returns at once and moves time
    forward by its length; ``clock.slept`` lists the sleeps asked for."""
    return ManualClock(auto_advance=True)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client(clock: ManualClock) -> AsyncIterator[AsyncReplicate]:
    policy = RetryPolicy(max_retries=3)
    async with AsyncReplicate(api_token=TOKEN, base_url=API, retry=policy, clock=clock) as c:
        yield c
