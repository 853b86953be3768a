"""Attempt timeouts on one timer per timeout length, instead of aiohttp's timers per request.

aiohttp arms a timer for an attempt's ``total`` and re-arms one for ``sock_read`` at every
chunk it receives: two or three timer handles per API call, each with a copy of the
context, kept in the loop's heap until they are due or swept. That bookkeeping cost more
than everything else the client adds to a call (measured in ``benchmarks/``). Nearly every
API call sends a small JSON body and gets its whole answer in one or two chunks, so the
silence that ``read`` bounds is the wait from sending to the answer's headers.

:class:`Watchdog` keeps, per timeout length, the attempts waiting for their headers in a
queue: they were armed in order, so they fall due in order, and one timer at the head of
the queue serves them all. An attempt whose headers arrive leaves (:meth:`Watch.end`); one
still waiting when it falls due has its task cancelled, which the request path turns into
its timeout error (:meth:`Watch.timed_out`). A body that is still arriving after the
headers is read with its own re-armed deadline (per chunk, as aiohttp does).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final, NamedTuple

import aiohttp

__all__ = ["Timing", "Watch", "Watchdog", "timing"]

#: At most this many timeout lengths get a lane (per-call timeouts repeat; beyond, the
#: request path leaves the timeouts to aiohttp).
MAX_LANES: Final = 64
#: How early the loop may run a timer (asyncio's own margin: the monotonic clock's).
_RESOLUTION: Final = time.get_clock_info("monotonic").resolution
#: Ended watches may wait behind a slow one at the head; the queue is swept of them once
#: they outnumber the live ones by this much.
_SLACK: Final = 64


class Timing(NamedTuple):
    """An attempt's timeouts as the watchdog keeps them (aiohttp keeps the connect phase)."""

    #: What aiohttp is given: the connect timeout only, so it arms no timer per request.
    connect_only: aiohttp.ClientTimeout
    #: The wait for the answer's headers, from the start of the attempt: the read timeout
    #: (the total, if shorter).
    first: float
    #: The longest silence between two chunks of a body still arriving after the headers.
    read: float
    #: The whole attempt, from its start to the last byte of the body.
    total: float


def timing(timeout: aiohttp.ClientTimeout) -> Timing | None:
    """How the watchdog keeps ``timeout``; ``None`` when it bounds neither the read nor the
    whole attempt (nothing to watch: aiohttp keeps it as it is)."""
    read = timeout.sock_read or timeout.total
    total = timeout.total or timeout.sock_read
    if read is None or total is None:
        return None
    connect_only = aiohttp.ClientTimeout(
        total=None, sock_connect=timeout.sock_connect, ceil_threshold=timeout.ceil_threshold
    )
    return Timing(connect_only, min(read, total), read, total)


class Watch:
    """One attempt waiting for its headers: when it falls due, and its task."""

    __slots__ = ("_cancelling", "_lane", "_owner", "due", "fired", "task")

    def __init__(self, lane: _Lane, due: float, task: asyncio.Task[object]) -> None:
        self._lane = lane
        self.due = due
        #: The attempt's task while it is watched (``None`` once ended or fired).
        self.task: asyncio.Task[object] | None = task
        self._owner = task
        self.fired = False
        #: The task's cancellation count when the watch began (a caller may have taken a
        #: cancellation without taking it back: that one is not this watch's business).
        self._cancelling = task.cancelling()

    def end(self) -> None:
        """The headers arrived, or the attempt is over: stop watching (idempotent).

        A watch that fired although the attempt went on (its cancellation was taken on the
        way, by something between the timer and the caller) takes it back, so the task's
        cancellation count is left as the caller had it.
        """
        if self.task is not None:
            self.task = None
            self._lane.ended(self)
        elif self.fired:
            self.timed_out()

    def timed_out(self) -> bool:
        """After a ``CancelledError`` in the attempt: whether it was this watch's (then the
        cancellation is taken back and the caller raises its timeout error instead), and
        not also the caller's own (then it propagates)."""
        if not self.fired:
            return False
        self.fired = False
        return self._owner.uncancel() <= self._cancelling


class _Lane:
    """The watches of one timeout length, in the order they fall due, and their timer."""

    __slots__ = ("_timer", "live", "loop", "queue", "seconds")

    def __init__(self, seconds: float, loop: asyncio.AbstractEventLoop) -> None:
        self.seconds = seconds
        self.queue: deque[Watch] = deque()
        self.live = 0
        self.loop = loop
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, task: asyncio.Task[object]) -> Watch:
        watch = Watch(self, self.loop.time() + self.seconds, task)
        self.queue.append(watch)
        self.live += 1
        if self._timer is None:
            self._timer = self.loop.call_at(watch.due, self._fire)
        return watch

    def ended(self, watch: Watch) -> None:
        self.live -= 1
        queue = self.queue
        if queue[0] is watch:
            queue.popleft()
            while queue and queue[0].task is None:
                queue.popleft()
        elif len(queue) > 2 * self.live + _SLACK:  # ended ones piling up behind a slow one
            self.queue = deque(w for w in queue if w.task is not None)

    def _fire(self) -> None:
        self._timer = None
        queue = self.queue
        # The loop runs a timer up to its clock's resolution early: what falls due within
        # it is due now (else the timer would be armed again for the same instant).
        now = self.loop.time() + _RESOLUTION
        while queue:
            watch = queue[0]
            task = watch.task
            if task is not None and watch.due > now:
                self._timer = self.loop.call_at(watch.due, self._fire)
                return
            queue.popleft()
            if task is not None:
                watch.task = None
                self.live -= 1
                watch.fired = True
                task.cancel("the attempt's read timeout")

    def close(self) -> None:
        """Cancel the timer if no watch is live; live ones keep it, to fall due as usual."""
        if self._timer is not None and not self.live:
            self._timer.cancel()
            self._timer = None


class Watchdog:
    """The lanes of one client (shared by its option views)."""

    __slots__ = ("_lanes",)

    def __init__(self) -> None:
        self._lanes: dict[float, _Lane] = {}

    def watch(self, timing: Timing) -> Watch | None:
        """Watch the current task's attempt until its headers arrive, for ``timing.first``
        seconds; ``None`` when it cannot be (no task, or too many lengths): the caller then
        leaves the timeouts to aiohttp."""
        task = asyncio.current_task()
        if task is None:
            return None
        seconds = timing.first
        lane = self._lanes.get(seconds)
        if lane is None or lane.loop is not task.get_loop():
            if lane is None and len(self._lanes) >= MAX_LANES:
                return None
            lane = self._lanes[seconds] = _Lane(seconds, task.get_loop())
        return lane.watch(task)

    def close(self) -> None:
        """The client is closing: cancel the timers of idle lanes. Attempts still in flight
        (on a session the caller lent, which closing leaves open) keep their timeouts."""
        for lane in self._lanes.values():
            lane.close()
        self._lanes.clear()
