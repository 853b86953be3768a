"""How a component decides between Redis and its local path while Redis is away."""

from __future__ import annotations

import logging

import pytest

from replicate_async.redis._common import Outage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_one_probe_at_a_time_with_back_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    clock = Clock()
    outage = Outage("doing it locally", clock)
    assert outage.should_try()
    outage.failed(ConnectionError("refused"))
    assert outage.down
    assert not outage.should_try()  # back-off: 1 s
    clock.now += 1.0
    assert outage.should_try()  # this caller probes...
    assert not outage.should_try()  # ...and nobody else meanwhile
    outage.failed(ConnectionError("refused"))
    clock.now += 1.5
    assert not outage.should_try()  # the back-off doubled: 2 s
    clock.now += 0.5
    assert outage.should_try()
    clock.now += 10.0  # that probe's caller was cancelled and never reported
    assert outage.should_try()
    outage.succeeded()
    assert not outage.down
    assert outage.should_try()
    assert [r.getMessage() for r in caplog.records] == [
        "Redis unreachable (ConnectionError: refused); doing it locally",
        "Redis reachable again; doing it locally: back to the shared state",
    ]
