"""The watchdog (``_core/watch.py``): attempt timeouts on one timer per timeout length.

Plain asyncio on the real loop clock with short timeouts; nothing here asserts how long
anything took, only what happened (which tasks were cancelled, what the lanes hold).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import pytest

from replicate_async._core.watch import (
    _SLACK,
    MAX_LANES,
    Timing,
    Watch,
    Watchdog,
    _Lane,
    timing,
)

SHORT = 0.05
#: Long enough not to fall due between two quick steps of a test on a loaded machine.
MEDIUM = 0.3
#: Long enough never to fall due during a test.
LONG = 60.0


def plan(first: float) -> Timing:
    """A Timing whose headers wait is ``first`` seconds."""
    found = timing(aiohttp.ClientTimeout(total=first, sock_connect=1))
    assert found is not None
    return found


def idle_then_close(dog: Watchdog) -> None:
    """Every lane holds nothing (no live watch, no entry kept); then close the watchdog."""
    held = {s: (lane.live, len(lane.queue)) for s, lane in lanes(dog).items()}
    assert held == dict.fromkeys(held, (0, 0))
    dog.close()


def lanes(dog: Watchdog) -> dict[float, Any]:
    """The watchdog's lanes by length (their queue, live count and timer are what we check)."""
    return dog._lanes


class Attempt:
    """A task standing for an attempt: it waits (for the headers) until told to stop or
    cancelled, and records how it ended. ``hold`` is awaited by the task."""

    def __init__(self, dog: Watchdog, first: float) -> None:
        self.dog = dog
        self.first = first
        self.watch: Watch | None = None
        self.outcome: str | None = None
        self.headers = asyncio.Event()
        self.armed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        self.watch = self.dog.watch(plan(self.first))
        assert self.watch is not None
        self.armed.set()
        try:
            await self.headers.wait()
        except asyncio.CancelledError:
            self.outcome = "timed out" if self.watch.timed_out() else "cancelled"
            if self.outcome == "cancelled":
                raise
            return
        finally:
            self.watch.end()
        self.outcome = "answered"


async def started(attempts: list[Attempt]) -> None:
    """Let every attempt task run up to its wait (its watch is armed)."""
    async with asyncio.timeout(5):
        await asyncio.gather(*(a.armed.wait() for a in attempts))


async def settle(attempts: list[Attempt]) -> None:
    """Wait (bounded) for every attempt to end; a real cancellation is collected, not raised."""
    async with asyncio.timeout(5):
        await asyncio.gather(*(a.task for a in attempts), return_exceptions=True)


# -- one watch ----------------------------------------------------------------------------


async def test_a_watch_ended_before_it_is_due_never_cancels() -> None:
    dog = Watchdog()
    attempt = Attempt(dog, MEDIUM)
    await started([attempt])
    attempt.headers.set()
    await settle([attempt])
    await asyncio.sleep(MEDIUM * 1.5)  # past the due time: the lane's timer ran
    assert attempt.outcome == "answered"
    assert not attempt.task.cancelled()
    assert attempt.task.cancelling() == 0
    lane = lanes(dog)[MEDIUM]
    assert (lane.live, len(lane.queue), lane._timer) == (0, 0, None)
    dog.close()


async def test_a_watch_that_falls_due_cancels_its_task_and_says_so_once() -> None:
    dog = Watchdog()
    seen: list[bool] = []

    async def attempt() -> None:
        watch = dog.watch(plan(SHORT))
        assert watch is not None
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            seen.append(watch.timed_out())
            seen.append(watch.timed_out())  # asked again: no longer
            seen.append(asyncio.current_task().cancelling() == 0)  # type: ignore[union-attr]
        finally:
            watch.end()
            watch.end()  # idempotent

    task = asyncio.create_task(attempt())
    async with asyncio.timeout(5):
        await task
    assert seen == [True, False, True]
    assert not task.cancelled()
    idle_then_close(dog)


async def test_timed_out_is_false_without_a_cancellation_of_its_own() -> None:
    """A CancelledError that is not the watch's (it never fell due) propagates."""
    dog = Watchdog()
    attempt = Attempt(dog, LONG)
    await started([attempt])
    attempt.task.cancel()
    await settle([attempt])
    assert attempt.outcome == "cancelled"
    assert attempt.task.cancelled()
    idle_then_close(dog)


async def test_an_outer_cancellation_with_the_watchs_propagates() -> None:
    """The caller's own cancellation, arriving together with the watch's (both before the
    task runs again), wins: the task ends cancelled, the watch's part taken back."""
    dog = Watchdog()
    attempt = Attempt(dog, SHORT)
    await started([attempt])
    assert attempt.watch is not None
    # Timers due at the same instant run in the same loop iteration, before the task.
    asyncio.get_running_loop().call_at(attempt.watch.due, attempt.task.cancel)
    await settle([attempt])
    assert attempt.watch.fired is False  # it did fall due, and was asked
    assert attempt.outcome == "cancelled"
    assert attempt.task.cancelled()
    dog.close()


async def _under_caller_timeout(dog: Watchdog, caller_due: Callable[[Watch], float]) -> list[str]:
    """A watched wait inside the caller's asyncio.timeout_at(caller_due(watch)): what each
    layer saw, then the task's cancel count."""
    outcome: list[str] = []

    async def caller() -> None:
        watch = dog.watch(plan(SHORT))
        assert watch is not None
        try:
            async with asyncio.timeout_at(caller_due(watch)):
                try:
                    await asyncio.sleep(LONG)
                except asyncio.CancelledError:
                    outcome.append("ours" if watch.timed_out() else "propagated")
                    if outcome[-1] == "propagated":
                        raise
                finally:
                    watch.end()
        except TimeoutError:
            outcome.append("caller's TimeoutError")
        outcome.append(f"cancelling={asyncio.current_task().cancelling()}")  # type: ignore[union-attr]

    async with asyncio.timeout(5):
        await asyncio.create_task(caller())
    return outcome


async def test_a_caller_timeout_expiring_with_the_watch_is_the_callers() -> None:
    """asyncio.timeout() expiring at the watch's instant: the caller gets its own
    TimeoutError, and nothing is left in the task's cancel count."""
    dog = Watchdog()
    outcome = await _under_caller_timeout(dog, lambda watch: watch.due)
    assert outcome == ["propagated", "caller's TimeoutError", "cancelling=0"]
    dog.close()


async def test_a_caller_timeout_not_yet_due_leaves_the_watch_its_own() -> None:
    dog = Watchdog()
    outcome = await _under_caller_timeout(dog, lambda watch: watch.due + LONG)
    assert outcome == ["ours", "cancelling=0"]
    dog.close()


# -- one lane, many watches ----------------------------------------------------------------


def finishing_order(attempts: list[Attempt]) -> list[Attempt]:
    """A list the attempts append themselves to as their tasks finish."""
    order: list[Attempt] = []
    for attempt in attempts:
        attempt.task.add_done_callback(functools.partial(_finished, order, attempt))
    return order


def _finished(order: list[Attempt], attempt: Attempt, _: object) -> None:
    order.append(attempt)


def count_lane_timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Spy on the running loop's ``call_at``: the due times of the lanes' timers armed."""
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    real = loop.call_at

    def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        if getattr(callback, "__func__", None) is _Lane._fire:
            armed.append(when)
        return real(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", call_at)
    return armed


async def test_a_burst_of_watches_arms_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 attempts watched at once: one timer for them all (aiohttp arms one each),
    and each one falls due and is cancelled, in the order they were armed."""
    armed = count_lane_timers(monkeypatch)
    dog = Watchdog()
    attempts = [Attempt(dog, MEDIUM) for _ in range(1000)]
    await started(attempts)
    lane = lanes(dog)[MEDIUM]
    assert (lane.live, len(lane.queue), len(lanes(dog))) == (1000, 1000, 1)
    assert len(armed) == 1
    order = finishing_order(attempts)
    await settle(attempts)
    assert {a.outcome for a in attempts} == {"timed out"}
    assert order == attempts
    assert len(armed) <= 1000  # re-armed only for a head not yet due
    assert (lane.live, len(lane.queue), lane._timer) == (0, 0, None)
    dog.close()


async def test_watches_of_a_lane_fall_due_in_order_on_one_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Armed one after another, they fall due one after another: the one timer is re-armed
    at each next head, never one per watch on top."""
    armed = count_lane_timers(monkeypatch)
    dog = Watchdog()
    attempts = []
    for _ in range(20):
        attempts.append(Attempt(dog, SHORT))
        await asyncio.sleep(0.002)
    order = finishing_order(attempts)
    await settle(attempts)
    assert {a.outcome for a in attempts} == {"timed out"}
    assert order == attempts
    assert 1 <= len(armed) <= 20
    assert armed == sorted(armed)
    watches = [a.watch for a in attempts]
    assert all(w is not None and armed[0] <= w.due for w in watches)
    lane = lanes(dog)[SHORT]
    assert (lane.live, len(lane.queue), lane._timer) == (0, 0, None)
    dog.close()


async def test_ended_watches_at_the_head_are_dropped() -> None:
    dog = Watchdog()
    attempts = [Attempt(dog, LONG) for _ in range(5)]
    await started(attempts)
    lane = lanes(dog)[LONG]
    assert (lane.live, len(lane.queue)) == (5, 5)
    attempts[2].headers.set()  # in the middle: stays queued (ended), not live
    await settle([attempts[2]])
    assert (lane.live, len(lane.queue)) == (4, 5)
    attempts[0].headers.set()
    attempts[1].headers.set()  # the head and the next: dropped, with the ended one behind
    await settle(attempts[:2])
    assert (lane.live, len(lane.queue)) == (2, 2)
    assert [w.task for w in lane.queue] == [attempts[3].task, attempts[4].task]
    for attempt in attempts[3:]:
        attempt.headers.set()
    await settle(attempts)
    assert (lane.live, len(lane.queue)) == (0, 0)
    assert {a.outcome for a in attempts} == {"answered"}
    dog.close()


async def test_ended_watches_behind_a_slow_one_are_swept() -> None:
    """1,000 attempts answered one after another behind one still waiting (a sequential
    loop beside a slow call): the queue stays bounded, not one entry per request."""
    dog = Watchdog()
    slow = Attempt(dog, LONG)
    await started([slow])
    lane = lanes(dog)[LONG]
    longest = 0
    for _ in range(1000):
        quick = Attempt(dog, LONG)
        await started([quick])
        longest = max(longest, len(lane.queue))
        quick.headers.set()
        await settle([quick])
        assert quick.outcome == "answered"
    assert lane.live == 1
    assert lane.queue[0].task is slow.task
    assert longest <= 2 * 2 + _SLACK + 1  # live ones, and at most 2 x live + slack ended
    assert len(lane.queue) <= 2 * 1 + _SLACK + 1
    slow.headers.set()
    await settle([slow])
    assert slow.outcome == "answered"
    idle_then_close(dog)


async def test_ended_watches_behind_a_slow_one_are_swept_in_batches() -> None:
    """The same with 100 in flight at a time, ten times over."""
    dog = Watchdog()
    slow = Attempt(dog, LONG)
    await started([slow])
    lane = lanes(dog)[LONG]
    for _ in range(10):
        batch = [Attempt(dog, LONG) for _ in range(100)]
        await started(batch)
        assert len(lane.queue) <= 100 + 2 * 1 + _SLACK + 1
        for attempt in batch:
            attempt.headers.set()
        await settle(batch)
        assert {a.outcome for a in batch} == {"answered"}
    assert lane.live == 1
    assert len(lane.queue) <= 2 * 1 + _SLACK + 1
    slow.headers.set()
    await settle([slow])
    idle_then_close(dog)


async def test_a_head_that_ended_hands_the_timer_to_the_next() -> None:
    """The first watch answered, the second falls due: the timer, armed for the first,
    is re-armed for the second and cancels it (and only it)."""
    dog = Watchdog()
    first = Attempt(dog, MEDIUM)
    await started([first])
    await asyncio.sleep(0.01)
    second = Attempt(dog, MEDIUM)
    await started([second])
    first.headers.set()
    await settle([first, second])
    assert (first.outcome, second.outcome) == ("answered", "timed out")
    lane = lanes(dog)[MEDIUM]
    assert (lane.live, len(lane.queue), lane._timer) == (0, 0, None)
    dog.close()


# -- the watchdog -------------------------------------------------------------------------


async def test_each_length_gets_its_own_lane_up_to_the_limit() -> None:
    dog = Watchdog()
    fast = Attempt(dog, SHORT)
    slow = Attempt(dog, LONG)
    await started([fast, slow])
    assert set(lanes(dog)) == {SHORT, LONG}
    await settle([fast])
    assert (fast.outcome, slow.outcome) == ("timed out", None)  # the long one still waits
    slow.headers.set()
    await settle([slow])
    assert slow.outcome == "answered"

    async def fill() -> list[Watch | None]:
        return [dog.watch(plan(LONG + i)) for i in range(MAX_LANES + 1)]

    made = await asyncio.create_task(fill())
    assert len(lanes(dog)) == MAX_LANES
    # LONG has its lane; 62 new lengths fit beside SHORT and LONG; the last two are
    # declined (the request path then leaves the timeouts to aiohttp).
    assert [w is None for w in made] == [False] * (MAX_LANES - 1) + [True, True]
    for watch in made:
        if watch is not None:
            watch.end()
    dog.close()


async def test_no_task_no_watch() -> None:
    """Outside a task (in a loop callback) there is nothing to cancel: declined."""
    dog = Watchdog()
    made = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(lambda: made.set_result(dog.watch(plan(SHORT))))
    async with asyncio.timeout(5):
        assert await made is None
    assert lanes(dog) == {}


async def test_close_cancels_the_lanes_timers() -> None:
    """Attempts answered before they were due leave their lanes' timers armed until then
    (ending a watch does not touch the timer); closing the client cancels them, so no
    handle of a closed client stays in the loop."""
    dog = Watchdog()
    attempts = [Attempt(dog, MEDIUM), Attempt(dog, LONG)]
    await started(attempts)
    for attempt in attempts:
        attempt.headers.set()
    await settle(attempts)
    assert [a.outcome for a in attempts] == ["answered", "answered"]
    armed = [lane._timer for lane in lanes(dog).values()]
    assert [lane.live for lane in lanes(dog).values()] == [0, 0]
    assert all(t is not None and not t.cancelled() for t in armed)
    dog.close()
    assert all(t is not None and t.cancelled() for t in armed)
    assert lanes(dog) == {}


def _in_new_loop(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main`` in a new event loop in another thread (pytest-asyncio's is running)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(main())))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    return out[0]


async def test_a_new_event_loop_gets_a_new_lane() -> None:
    dog = Watchdog()

    async def timed_out() -> tuple[Any, str | None]:
        late = Attempt(dog, SHORT)
        await settle([late])
        return lanes(dog)[SHORT], late.outcome

    first_lane, outcome = _in_new_loop(timed_out)
    assert outcome == "timed out"
    second_lane, outcome = _in_new_loop(timed_out)
    assert outcome == "timed out"  # the old loop's lane would never have fired here
    assert second_lane is not first_lane
    assert second_lane.loop is not first_lane.loop
    here = Attempt(dog, SHORT)
    await settle([here])
    assert here.outcome == "timed out"
    assert lanes(dog)[SHORT].loop is asyncio.get_running_loop()
    dog.close()


# -- timing(): what the watchdog keeps of a ClientTimeout -----------------------------------


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        # read and total: the headers wait is the read; aiohttp keeps the connect.
        (aiohttp.ClientTimeout(total=300, sock_connect=10, sock_read=60), (10, 60, 60, 300)),
        # a total shorter than the read bounds the headers wait too
        (aiohttp.ClientTimeout(total=5, sock_connect=1, sock_read=60), (1, 5, 60, 5)),
        # no sock_read: the total is both
        (aiohttp.ClientTimeout(total=9, sock_connect=9), (9, 9, 9, 9)),
        # no total: the read is both
        (aiohttp.ClientTimeout(total=None, sock_connect=3, sock_read=7), (3, 7, 7, 7)),
        # no connect timeout: aiohttp gets none either
        (aiohttp.ClientTimeout(total=4, sock_read=2), (None, 2, 2, 4)),
    ],
)
def test_timing_of_a_client_timeout(
    timeout: aiohttp.ClientTimeout, expected: tuple[float | None, float, float, float]
) -> None:
    found = timing(timeout)
    assert found is not None
    connect_only, first, read, total = found
    assert (connect_only.sock_connect, first, read, total) == expected
    assert (connect_only.total, connect_only.sock_read, connect_only.connect) == (None, None, None)
    assert connect_only.ceil_threshold == timeout.ceil_threshold


def test_timing_of_a_timeout_bounding_neither_read_nor_total_is_none() -> None:
    assert timing(aiohttp.ClientTimeout(total=None, sock_connect=5)) is None
    assert timing(aiohttp.ClientTimeout(total=None)) is None
