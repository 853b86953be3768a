"""Shared fixtures: recorded API examples, and mocked or real servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from aioresponses import aioresponses

from replicate_async import AsyncReplicate, RetryPolicy
from replicate_async._core.watch import Timing, Watch, Watchdog
from replicate_async.testing import ManualClock

from ._aioresponses_shim import install
from .helpers import API, TOKEN, Watched

install()

# Every server of the suite is on loopback, and clients read proxies from the environment
# (trust_env): a developer's HTTP(S)_PROXY must not capture the suite's requests.
_no_proxy = [h for h in os.environ.get("no_proxy", os.environ.get("NO_PROXY", "")).split(",") if h]
# Both spellings: urllib (which aiohttp asks) prefers the lower-case one when both are set.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(
    dict.fromkeys([*_no_proxy, "127.0.0.1", "localhost", "::1"])
)

#: Folders whose tests run many processes and real Redis servers for tens of seconds each:
#: marked ``slow``, so a second CI leg (another Python and aiohttp) can run ``-m "not slow"``.
_SLOW_FOLDERS = ("redis", "batch")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        if "tests" in parts and parts[parts.index("tests") + 1] in _SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> list[Watched]:
    """Every attempt any client asks its watchdog to watch, in order, with the watch it got.

    A spy, not a stand-in: each call goes through to the real :meth:`Watchdog.watch`.
    """
    calls: list[Watched] = []
    real = Watchdog.watch

    def spy(self: Watchdog, timing: Timing) -> Watch | None:
        watch = real(self, timing)
        calls.append(Watched(timing, watch))
        return watch

    monkeypatch.setattr(Watchdog, "watch", spy)
    return calls
