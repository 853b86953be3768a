"""Fixtures for the reliability suite (faults, load, cancellation, bad input, security)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from replicate_async import RetryPolicy
from replicate_async.testing import ManualClock

from ._support import LoopErrors, OtherServer

#: The token the fake accepts; asserted absent from everything the SDK exposes.
SECRET = "r8_reliability_SECRET_d9f1c0ffee"


@pytest.fixture(autouse=True)
async def loop_errors() -> AsyncIterator[LoopErrors]:
    """Fail any test that leaves something for the loop's exception handler.

    Catches "Unclosed connection", exceptions in callbacks, and "Task exception was
    never retrieved" for tasks freed by reference counting (the load and cancellation
    tests also run a full garbage collection first, for tasks caught in cycles).
    """
    loop = asyncio.get_running_loop()
    errors = LoopErrors()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(errors)
    try:
        yield errors
        await asyncio.sleep(0)
        assert errors.contexts == [], errors.messages
    finally:
        loop.set_exception_handler(previous)


@pytest.fixture
def vsleep() -> ManualClock:
    """Virtual time for the client's waits (pass it as ``clock=``): every sleep returns
    at once, moving the clock forward; ``vsleep.slept`` lists them."""
    return ManualClock(auto_advance=True)


@pytest.fixture
def policy() -> RetryPolicy:
    """Two retries (three attempts)."""
    return RetryPolicy(max_retries=2)


@pytest.fixture
async def other() -> AsyncIterator[OtherServer]:
    """A second local server on another port (another origin) recording headers."""
    async with OtherServer() as server:
        yield server
