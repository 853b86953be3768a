"""Shared fixtures: recorded API examples, and mocked or real servers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from replicate_async import AsyncReplicate, RetryPolicy
from replicate_async.testing import ManualClock

from ._aioresponses_shim import install

install()

#: Recorded real API responses (copied from the project's shared/replicate-examples).
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
API = "https://api.replicate.com/v1"
TOKEN = "r8_test_token_0123456789abcdef"


def example(name: str) -> Any:
    """A recorded API body by file name, without ``.json``."""
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_text())


def example_names() -> list[str]:
    """Every recorded example's name."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.json"))


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
