"""How a component decides between Redis and its local path while Redis is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import pytest
import redis.asyncio as aioredis

from replicate_async.redis._common import Outage, guarded
from replicate_async.testing import ManualClock


def test_one_probe_at_a_time_with_back_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    clock = ManualClock()
    outage = Outage("doing it locally", clock)
    assert outage.should_try()
    outage.failed(ConnectionError("refused"))
    assert outage.down
    assert not outage.should_try()  # back-off: 1 s
    clock.advance(1.0)
    assert outage.should_try()  # this caller probes...
    assert not outage.should_try()  # ...and nobody else meanwhile
    outage.failed(ConnectionError("refused"))
    clock.advance(1.5)
    assert not outage.should_try()  # the back-off doubled: 2 s
    clock.advance(0.5)
    assert outage.should_try()
    clock.advance(10.0)  # that probe's caller was cancelled and never reported
    assert outage.should_try()
    outage.succeeded()
    assert not outage.down
    assert outage.should_try()
    assert [r.getMessage() for r in caplog.records] == [
        "Redis unreachable (ConnectionError: refused); doing it locally",
        "Redis reachable again; doing it locally: back to the shared state",
    ]


async def test_cancelling_a_task_waiting_on_redis_always_cancels_it(
    aredis: aioredis.Redis,
) -> None:
    # redis-py can return a result to a task cancelled as the reply arrives (Python 3.11's
    # asyncio.wait_for); every Redis call here goes through guarded(), which re-raises it.
    rng = random.Random(7)
    lost = 0
    for _ in range(300):  # bounded
        task = asyncio.ensure_future(guarded(aredis.get("key"), 5.0))
        for _ in range(rng.randint(1, 6)):
            await asyncio.sleep(0)
        requested = task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        lost += requested and not task.cancelled()
    assert lost == 0
