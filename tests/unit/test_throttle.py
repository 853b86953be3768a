"""The Throttle's decisions on virtual time: when a request may go, and what it learns."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replicate_async._core.throttle import RateLimiter, RequestKind, Throttle
from replicate_async.testing import ManualClock
from replicate_async.testing._ratelimit import TokenBucket

CREATE = 0.1  # seconds per create at the documented 600/min
OTHER = 0.02  # seconds per other request at 3000/min


def _throttle(clock: ManualClock, jitter: float = 0.0) -> Throttle:
    return Throttle(clock, jitter=jitter, rng=random.Random(7))


async def test_satisfies_the_rate_limiter_protocol() -> None:
    throttle = Throttle()
    assert isinstance(throttle, RateLimiter)
    await throttle.aclose()
    assert repr(throttle) == "Throttle(create=600/min, prediction_get=60000/min, other=3000/min)"


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        Throttle(create_per_minute=0)
    with pytest.raises(ValueError):
        Throttle(jitter=2)


async def test_unpaced_until_the_limit_shows(clock: ManualClock) -> None:
    """No hint and no 429 yet: any number of requests go at once."""
    throttle = _throttle(clock)
    for _ in range(1000):
        await throttle.acquire("create")
        throttle.observe("create", None)
    assert clock.slept == []
    assert throttle.waits == 0


async def test_a_hint_lets_exactly_the_remaining_tokens_through(clock: ManualClock) -> None:
    """ratelimit-remaining: 2 => two more creates at once, the third one interval later."""
    throttle = _throttle(clock)
    await throttle.acquire("create")
    throttle.observe("create", 2)
    for _ in range(2):
        await throttle.acquire("create")
        throttle.observe("create", None)
    assert clock.slept == []
    await throttle.acquire("create")
    assert clock.slept == [pytest.approx(CREATE)]


async def test_requests_sent_after_the_hinted_one_are_counted(clock: ManualClock) -> None:
    """A hint of 3 while two later requests are still in flight leaves one token."""

    async def send() -> asyncio.Task[None]:
        # Each request runs in its own task, like concurrent calls do.
        task = asyncio.ensure_future(throttle.acquire("create"))
        await task
        return task

    throttle = _throttle(clock)
    first = asyncio.get_running_loop().create_future()

    async def hinted() -> None:
        await throttle.acquire("create")
        await first
        throttle.observe("create", 3)

    answer = asyncio.ensure_future(hinted())
    await asyncio.sleep(0)
    await send()
    await send()  # two more, sent after the first and not answered
    first.set_result(None)
    await answer
    await throttle.acquire("create")  # the one token left
    assert clock.slept == []
    await throttle.acquire("create")
    assert clock.slept == [pytest.approx(CREATE)]


async def test_a_long_retry_after_teaches_the_low_credit_rate(clock: ManualClock) -> None:
    """Retry-After: 10 (6/min, burst 1) => one create every 10 s from then on."""
    throttle = _throttle(clock)
    await throttle.acquire("create")
    await throttle.on_rate_limited("create", 10)
    assert throttle.rate("create") == pytest.approx(0.1)
    for _ in range(3):
        await throttle.acquire("create")
    assert clock.slept == [pytest.approx(10), pytest.approx(10), pytest.approx(10)]
    assert throttle.rate("other") == pytest.approx(50)  # the other bucket is untouched


async def test_a_short_retry_after_holds_one_interval_only(clock: ManualClock) -> None:
    """Retry-After: 1 is the server's ceiling of a fraction of a second: the next slot is
    one interval away, and the rate stays the documented one."""
    throttle = _throttle(clock)
    await throttle.acquire("create")
    throttle.observe("create", 5)
    await throttle.acquire("create")
    await throttle.on_rate_limited("create", 1)
    await throttle.acquire("create")
    assert clock.slept == [pytest.approx(CREATE)]
    assert throttle.rate("create") == pytest.approx(10)


async def test_without_hints_429s_slow_the_pace_and_successes_restore_it(
    clock: ManualClock,
) -> None:
    throttle = _throttle(clock)
    await throttle.acquire("other")
    await throttle.on_rate_limited("other", None)  # activates pacing
    await throttle.acquire("other")
    await throttle.on_rate_limited("other", None)  # a paced request still throttled
    assert throttle.rate("other") == pytest.approx(50 * 0.95)
    await throttle.acquire("other")
    throttle.observe("other", None)
    assert throttle.rate("other") == pytest.approx(50)  # 10 % back, capped at documented


async def test_spare_tokens_restore_a_learned_rate(clock: ManualClock) -> None:
    throttle = _throttle(clock)
    await throttle.acquire("create")
    await throttle.on_rate_limited("create", 10)
    assert throttle.rate("create") == pytest.approx(0.1)
    for _ in range(30):
        await throttle.acquire("create")
        throttle.observe("create", 100)  # e.g. credit was added: the bucket is full
    assert throttle.rate("create") == pytest.approx(10)


async def test_waiters_are_served_first_come_first_served(clock: ManualClock) -> None:
    """Queued requests get consecutive slots one interval apart, in arrival order."""
    clock.auto_advance = False
    throttle = _throttle(clock)
    await throttle.acquire("create")
    throttle.observe("create", 0)
    sent: list[tuple[int, float]] = []

    async def request(i: int) -> None:
        await throttle.acquire("create")
        sent.append((i, round(clock.monotonic() - start, 6)))

    start = clock.monotonic()
    tasks = [asyncio.ensure_future(request(i)) for i in range(5)]
    await clock.wait_for_sleepers(5)
    await clock.advance_async(1.0)
    await asyncio.gather(*tasks)
    assert [i for i, _ in sent] == [0, 1, 2, 3, 4]
    assert [t for _, t in sent] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


async def test_a_429_pushes_back_the_queue(clock: ManualClock) -> None:
    """A request queued for +0.1 s wakes at +5.05 s when a 429 at +0.05 s says the next
    token is 5 s away (and teaches the rate 1/5 s)."""
    clock.auto_advance = False
    throttle = _throttle(clock)
    await throttle.acquire("create")
    throttle.observe("create", 0)
    start = clock.monotonic()
    woke: list[float] = []

    async def queued() -> None:
        await throttle.acquire("create")
        woke.append(clock.monotonic() - start)

    waiter = asyncio.ensure_future(queued())
    await clock.wait_for_sleepers(1)
    clock.advance(0.05)
    await throttle.on_rate_limited("create", 5.0)
    await clock.advance_async(10)
    await waiter
    assert woke == [pytest.approx(5.05)]
    assert throttle.rate("create") == pytest.approx(0.2)


async def test_a_cancelled_waiter_gives_its_slot_back(clock: ManualClock) -> None:
    clock.auto_advance = False
    throttle = _throttle(clock)
    await throttle.acquire("create")
    throttle.observe("create", 0)
    waiter = asyncio.ensure_future(throttle.acquire("create"))
    await clock.wait_for_sleepers(1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert throttle.delay("create") == pytest.approx(CREATE)  # not 2 intervals


async def test_a_cancelled_waiters_slot_goes_to_the_next_in_line(clock: ManualClock) -> None:
    """A, B, C queued for +0.1, +0.2, +0.3 s; B is cancelled, then D arrives: C moves up
    to B's slot and D takes the last one. No two requests on one tick (a burst-1 bucket
    would answer the second 429), and no slot left unused."""
    clock.auto_advance = False
    throttle = _throttle(clock)
    await throttle.acquire("create")
    throttle.observe("create", 0)
    start = clock.monotonic()
    sent: dict[str, float] = {}

    async def request(name: str) -> None:
        await throttle.acquire("create")
        sent[name] = round(clock.monotonic() - start, 6)

    a, b, c = (asyncio.ensure_future(request(n)) for n in "abc")
    await clock.wait_for_sleepers(3)
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    d = asyncio.ensure_future(request("d"))
    await clock.wait_for_sleepers(3)
    await clock.advance_async(1.0)
    await asyncio.gather(a, c, d)
    assert sent == {"a": pytest.approx(0.1), "c": pytest.approx(0.2), "d": pytest.approx(0.3)}


async def test_a_waiter_moved_up_and_cancelled_at_once_stays_cancelled(
    clock: ManualClock,
) -> None:
    """The wake-up of a waiter whose slot moved never swallows a real cancellation."""
    clock.auto_advance = False
    throttle = _throttle(clock)
    await throttle.acquire("create")
    throttle.observe("create", 0)
    first = asyncio.ensure_future(throttle.acquire("create"))
    second = asyncio.ensure_future(throttle.acquire("create"))
    await clock.wait_for_sleepers(2)
    first.cancel()  # moves ``second`` up...
    second.cancel()  # ...while it is being cancelled for real
    for task in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert throttle.delay("create") == pytest.approx(CREATE)  # both slots free again


async def test_jitter_stays_within_a_tenth_of_an_interval(clock: ManualClock) -> None:
    throttle = Throttle(clock, jitter=0.1, rng=random.Random(1))
    await throttle.acquire("other")
    throttle.observe("other", 0)
    for _ in range(200):
        await throttle.acquire("other")
    # Slots are absolute (one interval apart); each send is late by its own jitter only.
    sent_at = list(itertools.accumulate(clock.slept))
    extra = [t - (k + 1) * OTHER for k, t in enumerate(sent_at)]
    assert all(-1e-9 <= e <= OTHER / 10 + 1e-9 for e in extra)
    assert len({round(e, 9) for e in extra}) > 100  # drawn, not constant


# -- the property: against a real token bucket, few 429s and full use of the rate --------


async def _simulate(
    clock: ManualClock, per_minute: int, burst: int, workers: int, requests: int
) -> tuple[int, int, float]:
    """``workers`` tasks send ``requests`` requests in total through one Throttle to the
    fake's token bucket (on the same virtual clock): creates for 600/min, others for
    3000/min. 429s are retried after their jittered Retry-After, as the request path
    does. Returns (sent, 429s, duration)."""
    kind: RequestKind = "create" if per_minute == 600 else "other"
    bucket = TokenBucket(per_minute, clock, burst)
    throttle = Throttle(clock, rng=random.Random(3))
    todo = list(range(requests))
    counts = {"sent": 0, "429": 0}
    loop_rng = random.Random(5)

    async def worker() -> None:
        while todo:
            todo.pop()
            while True:
                await throttle.acquire(kind)
                counts["sent"] += 1
                await clock.sleep(0.001)  # the request travels...
                allowed, remaining, retry_after = bucket.take()
                await clock.sleep(0.001)  # ...and its answer
                if allowed:
                    throttle.observe(kind, remaining)
                    break
                counts["429"] += 1
                await throttle.on_rate_limited(kind, retry_after)
                await clock.sleep(retry_after * (1 + loop_rng.random() / 10))

    start = clock.monotonic()
    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    while not all(t.done() for t in tasks):
        await clock.advance_async(0.05, settle=3)
    await asyncio.gather(*tasks)
    return counts["sent"], counts["429"], clock.monotonic() - start


@settings(max_examples=25, deadline=None)
@given(
    workers=st.integers(min_value=1, max_value=64),
    limit=st.sampled_from([(600, 600), (600, 50), (600, 1), (3000, 3000), (3000, 50)]),
)
def test_paced_fan_out_keeps_429s_rare_and_the_rate_used(
    workers: int, limit: tuple[int, int]
) -> None:
    """Any concurrency against Replicate's documented buckets (600/min creates, 3,000/min
    others, their full bursts) and tighter bursts: besides the first crowd (sent before
    anything is known, all but the burst answered 429), at most 5 % of requests are 429s,
    and the whole batch takes at most 1.05 x the bucket's own minimum, plus one
    Retry-After (1 s, +10 % jitter) for the crowd that first finds the bucket empty, one
    interval per request of that crowd (a request queued before their 429s came back
    counted them as consumers) and 0.5 s for the simulated round trips.

    (Known limit, not covered: 3,000/min with a burst of 1 and dozens of workers, where a
    2 ms round trip is a tenth of the 20 ms interval, runs at about 5-6 % 429s.)
    """
    per_minute, burst = limit
    requests = 300

    async def scenario() -> tuple[int, int, float]:
        return await _simulate(ManualClock(), per_minute, burst, workers, requests)

    sent, throttled, duration = asyncio.run(scenario())
    ideal = max(0, requests - burst) * 60 / per_minute
    first_crowd = max(0, workers - burst)
    assert throttled - first_crowd <= 0.05 * sent, (sent, throttled)
    interval = 60 / per_minute
    assert duration <= 1.05 * ideal + 1.1 + first_crowd * interval + 0.5, (duration, ideal)


async def test_low_credit_fan_out_is_served_one_every_ten_seconds() -> None:
    """6/min, burst 1, 20 at once: all served in about 19 intervals, few 429s."""
    sent, throttled, duration = await _simulate(ManualClock(), 6, 1, 20, 20)
    assert sent - throttled == 20
    assert throttled <= 20  # the first crowd, then paced
    assert 190 <= duration <= 1.05 * 190 + 1


async def test_far_from_the_limit_the_hint_still_bounds_the_burst(clock: ManualClock) -> None:
    """The live API's ``ratelimit-remaining: 599``, answered while 99 other creates are in
    flight: nothing waits, and at most 599 - 99 more go before the next one is paced."""
    throttle = _throttle(clock)
    await throttle.acquire("create")  # the first answer turns pacing on
    throttle.observe("create", 599)
    crowd = [asyncio.ensure_future(throttle.acquire("create")) for _ in range(99)]
    await asyncio.gather(*crowd)  # sent, unanswered

    async def hinted() -> None:  # its own task: its own ticket
        await throttle.acquire("create")
        throttle.observe("create", 599)

    await asyncio.ensure_future(hinted())
    for _ in range(599 - 99):
        await throttle.acquire("create")
    assert clock.slept == []
    assert throttle.waits == 0
    await throttle.acquire("create")
    assert clock.slept == [pytest.approx(CREATE)]
