"""Clocks for the fake server: the wall clock, or a manual one tests advance by hand."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

__all__ = ["Clock", "ManualClock", "clock_sleep"]

Clock = Callable[[], float]
"""Any callable returning the current time as unix seconds (e.g. :func:`time.time`)."""

# 2025-01-01T00:00:00Z: a recent, round default start for manual clocks.
_DEFAULT_START = 1_735_689_600.0


class ManualClock:
    """A clock that only moves when told to, so time-driven tests are deterministic.

    Call it to read the time. Everything in the fake that waits (model run durations,
    ``Prefer: wait`` holds, ``Cancel-After`` deadlines, rate-limit refills) waits on this
    clock, so nothing happens until :meth:`advance` moves time past the deadline::

        clock = ManualClock()
        async with FakeReplicate(clock=clock) as fake:
            ...
            await clock.wait_for_sleepers(1)   # the fake is now waiting on the clock
            clock.advance(5)                   # wake everything due within 5 s
            await clock.advance_async(60)      # ...or let a minute pass, step by step

    With ``auto_advance=True`` every :meth:`sleep` returns at once, moving time forward by
    its own length: for code that waits one thing at a time (retry back-off, throttling),
    not for deadlines (a deadline's watcher would expire at once). Either way, every
    positive sleep asked for is recorded in :attr:`slept`.
    """

    def __init__(self, start: float = _DEFAULT_START, *, auto_advance: bool = False) -> None:
        self._now = float(start)
        self.auto_advance = auto_advance
        #: Every positive sleep asked for, in order.
        self.slept: list[float] = []
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._new_sleeper: asyncio.Event | None = None

    def __call__(self) -> float:
        """Return the current (manual) time in unix seconds."""
        return self._now

    def monotonic(self) -> float:
        """The same manual time, so a ManualClock can drive the SDK's own waits too.

        It satisfies :class:`replicate_async._clock.Clock`: pass it as
        ``ClientConfig(clock=...)`` and the client's retries, polls and deadlines run on it.
        """
        return self._now

    @property
    def pending_sleepers(self) -> int:
        """How many :meth:`sleep` calls are currently waiting for time to pass."""
        return sum(1 for _, _, fut in self._heap if not fut.done())

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due.

        Woken coroutines run at the event loop's next iterations, not inside this call.
        """
        if seconds < 0:
            raise ValueError("a ManualClock cannot go backwards")
        self._now += seconds
        while self._heap and self._heap[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._heap)
            if not fut.done():
                fut.set_result(None)

    async def advance_async(self, seconds: float, *, settle: int = 10) -> None:
        """Let ``seconds`` pass step by step, so chains of sleeps complete in order.

        Each due sleeper is woken at its own deadline, then the loop is given ``settle``
        iterations for woken tasks to run and schedule their next sleeps, which are
        woken too if they fall within the window. Use it to run a multi-step model to
        completion; plain :meth:`advance` only wakes what is already waiting.
        """
        if seconds < 0:
            raise ValueError("a ManualClock cannot go backwards")
        target = self._now + seconds
        while True:
            for _ in range(settle):
                await asyncio.sleep(0)
            live = [entry for entry in self._heap if not entry[2].done()]
            due = min((entry[0] for entry in live), default=None)
            if due is None or due > target:
                break
            self.advance(max(0.0, due - self._now))
        self.advance(target - self._now)
        for _ in range(settle):
            await asyncio.sleep(0)

    def set(self, now: float) -> None:
        """Jump to an absolute time (not earlier than the current one)."""
        self.advance(now - self._now)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by at least ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        self.slept.append(seconds)
        if self.auto_advance:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self._now + seconds, next(self._counter), fut))
        if self._new_sleeper is not None:
            self._new_sleeper.set()
        await fut

    async def wait_for_sleepers(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` real seconds) until ``count`` sleepers are pending."""
        async with asyncio.timeout(timeout):
            while self.pending_sleepers < count:
                self._new_sleeper = asyncio.Event()
                await self._new_sleeper.wait()


async def clock_sleep(clock: Clock, seconds: float) -> None:
    """Sleep ``seconds`` on ``clock``: manual clocks wait for :meth:`ManualClock.advance`."""
    if isinstance(clock, ManualClock):
        await clock.sleep(seconds)
    else:
        await asyncio.sleep(max(seconds, 0.0))


def system_clock() -> float:
    """The default clock: :func:`time.time`."""
    return time.time()
