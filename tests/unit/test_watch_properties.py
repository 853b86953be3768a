"""Invariants of a watchdog lane under any interleaving of attempts, answers and time.

A lane is driven through random programs (arm a watch, answer one, let time pass and run
the timer when it is due) on a virtual loop: the loop's clock and its timer heap are the
only stand-ins; the lane's own code runs as it does in the client. After every step:

- a watch falls due at most once, never before its due time (to the clock's resolution),
  and never once answered; one ended after it fell due gives its cancellation back;
- every watch past its due time and not answered has fired (within one step of time);
- the live count is the number of watches neither answered nor fired;
- at most one timer is armed, and while a watch is live, one is, due no later than the
  earliest live watch;
- the queue never holds more than ``2 x live + _SLACK + 1`` entries (answered ones do not
  pile up behind a slow one).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from replicate_async._core.watch import _RESOLUTION, _SLACK, Watch, _Lane

SECONDS = 10.0


class VirtualLoop:
    """The two things a lane asks of its loop: the time, and one ``call_at`` at a time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[VirtualTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any) -> VirtualTimer:
        timer = VirtualTimer(when, callback)
        self.timers.append(timer)
        return timer

    def armed(self) -> list[VirtualTimer]:
        return [t for t in self.timers if not t.cancelled and not t.ran]

    def advance(self, seconds: float) -> None:
        """Move the clock, running every armed timer that falls due on the way, in order."""
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.armed() if t.when <= end), key=lambda t: t.when)
            if not due:
                break
            timer = due[0]
            self.now = max(self.now, timer.when)
            timer.ran = True
            timer.callback()
        self.now = end


class VirtualTimer:
    def __init__(self, when: float, callback: Any) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self.ran = False

    def cancel(self) -> None:
        self.cancelled = True


class Attempt:
    """Stands for the attempt's task: counts the cancellations the lane asks for, and
    notes when the first came."""

    def __init__(self, loop: VirtualLoop) -> None:
        self.loop = loop
        self.cancels = 0
        self.taken_back = 0
        self.cancelled_at: float | None = None

    def cancel(self, msg: str | None = None) -> bool:
        self.cancels += 1
        if self.cancelled_at is None:
            self.cancelled_at = self.loop.now
        return True

    def cancelling(self) -> int:
        return self.cancels - self.taken_back

    def uncancel(self) -> int:
        self.taken_back += 1
        return self.cancelling()


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("arm"), st.integers(1, 40)),
        st.tuples(st.just("answer"), st.integers(0, 10_000)),
        # The newest n live attempts are answered: the older ones stay slow at the head.
        st.tuples(st.just("answer newest"), st.integers(1, 40)),
        st.tuples(st.just("wait"), st.floats(0.0, 2.5 * SECONDS)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS)
def test_a_lane_keeps_its_promises_under_any_program(steps: list[tuple[str, Any]]) -> None:
    loop = VirtualLoop()
    lane = _Lane(SECONDS, loop)  # type: ignore[arg-type]
    armed: list[tuple[Watch, Attempt, float]] = []  # every watch, its task, its due time
    answered: set[int] = set()
    for op, arg in steps:
        if op == "arm":
            for _ in range(arg):
                attempt = Attempt(loop)
                watch = lane.watch(attempt)  # type: ignore[arg-type]
                armed.append((watch, attempt, loop.now + SECONDS))
        elif op == "answer" and armed:
            index = arg % len(armed)
            watch, attempt, _ = armed[index]
            if not attempt.cancels:
                answered.add(index)
            watch.end()  # an answered (or fired) watch may be ended again: no effect
        elif op == "answer newest":
            waiting = [i for i, (w, a, _) in enumerate(armed) if w.task is not None]
            for index in waiting[-arg:]:
                answered.add(index)
                armed[index][0].end()
        elif op == "wait":
            loop.advance(arg)
        _check(lane, loop, armed, answered)
    # Time runs out for every watch still waiting: each falls due, once; nothing is kept.
    loop.advance(2 * SECONDS)
    _check(lane, loop, armed, answered)
    assert lane.live == 0
    assert not lane.queue
    assert loop.armed() == []


def _check(
    lane: _Lane,
    loop: VirtualLoop,
    armed: list[tuple[Watch, Attempt, float]],
    answered: set[int],
) -> None:
    live = 0
    for index, (watch, attempt, due) in enumerate(armed):
        assert attempt.cancels <= 1  # falls due at most once
        if index in answered:
            assert attempt.cancels == 0  # never once answered
        elif attempt.cancels:
            assert attempt.cancelled_at is not None
            # Never before its due time (within the clock's resolution, as the loop runs
            # its timers: what falls due within it is due).
            assert due <= attempt.cancelled_at + _RESOLUTION
            # Still to be handled by the attempt, or ended after it fired (a cancellation
            # taken on the way): then taken back, the task's count as it was.
            assert watch.fired or attempt.cancelling() == 0
        else:
            assert due > loop.now  # past due and not answered: fired
            live += 1
    assert lane.live == live
    timers = loop.armed()
    assert len(timers) <= 1
    if live:
        earliest = min(due for w, a, due in armed if w.task is not None)
        assert timers
        assert timers[0].when <= earliest
    assert len(lane.queue) <= 2 * lane.live + _SLACK + 1
