"""Shared fixtures: recorded API examples, and mocked or real servers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from replicate_async import AsyncReplicate, RetryPolicy

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


class FakeSleep:
    """Records the sleeps the retry layer asks for, without sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client(sleeps: FakeSleep) -> AsyncIterator[AsyncReplicate]:
    policy = RetryPolicy(max_retries=3, sleep=sleeps)
    async with AsyncReplicate(api_token=TOKEN, base_url=API, retry=policy) as c:
        yield c
