"""RedisRateLimiter against a real redis-server: pacing, the shared hold, the fallback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from replicate_async._core.throttle import RateLimiter
from replicate_async.redis import RedisRateLimiter

from ._servers import RedisServer, free_port, until


class RecordingClock:
    """Real time plus every sleep taken, which returns at once (Redis keeps real time)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.offset = 0.0
        self.during_sleep: Callable[[], Awaitable[None]] | None = None

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(seconds, 0.0)
        hook, self.during_sleep = self.during_sleep, None
        if hook is not None:
            await hook()
        await asyncio.sleep(0)


def limiter(redis: aioredis.Redis, prefix: str, clock: RecordingClock, **kw: object):
    return RedisRateLimiter(redis, prefix=prefix, clock=clock, **kw)  # type: ignore[arg-type]


async def test_two_processes_share_one_pace(redis_server: RedisServer, prefix: str) -> None:
    # Two limiters with their own connection pools stand for two processes: 6 creates a
    # minute with a burst of 1 means one slot every 10 s, fleet-wide, in arrival order.
    one, two = (aioredis.Redis.from_url(redis_server.url) for _ in range(2))
    clocks = [RecordingClock(), RecordingClock()]
    limiters = [
        limiter(one, prefix, clocks[0], create_per_minute=6, create_burst=1),
        limiter(two, prefix, clocks[1], create_per_minute=6, create_burst=1),
    ]
    try:
        for i in range(6):
            await limiters[i % 2].acquire("create")
        waits = [0.0, *sorted(clocks[0].sleeps + clocks[1].sleeps)]
        assert len(waits) == 6
        for k, wait in enumerate(waits):
            assert k * 10 - 3 <= wait <= k * 10 + 0.01, waits
        # Other requests have their own budget: not held up by the creates.
        await limiters[0].acquire("other")
        assert len(clocks[0].sleeps) == 2
    finally:
        for each in limiters:
            await each.aclose()
        await one.aclose()
        await two.aclose()


async def test_a_request_sleeps_once_for_its_slot(aredis: aioredis.Redis, prefix: str) -> None:
    # Real sleeps, which overshoot their slot a little: waking late is no reason to queue
    # again (only a hold that ends after the slot is).
    shared = RedisRateLimiter(aredis, prefix=prefix, other_per_minute=600, other_burst=1)
    async with asyncio.timeout(30):  # a hang guard
        await asyncio.gather(*(shared.acquire("other") for _ in range(10)))
    # Nine of them had to wait (fewer only if the machine stalled a whole interval).
    assert 5 <= shared.stats["waited"] <= 9


async def test_burst_goes_at_once_then_the_pace_holds(aredis: aioredis.Redis, prefix: str) -> None:
    clock = RecordingClock()
    shared = limiter(aredis, prefix, clock, other_per_minute=60, other_burst=5)
    for _ in range(5):
        await shared.acquire("other")
    assert clock.sleeps == []
    await shared.acquire("other")
    assert len(clock.sleeps) == 1
    assert 0 < clock.sleeps[0] <= 1.0


async def test_a_429_anywhere_holds_every_process(redis_server: RedisServer, prefix: str) -> None:
    seen, other = (aioredis.Redis.from_url(redis_server.url) for _ in range(2))
    clock = RecordingClock()
    first = limiter(seen, prefix, RecordingClock(), create_per_minute=600, create_burst=10)
    second = limiter(other, prefix, clock, create_per_minute=600, create_burst=10)
    try:
        await first.on_rate_limited("create", 1.9)
        await second.acquire("create")
        await second.acquire("create")
        await second.acquire("other")  # the hold is per kind
        assert len(clock.sleeps) == 2
        held, paced = clock.sleeps
        assert 0.9 <= held <= 1.9
        # After the hold the pace resumes with no burst: the next slot is 0.1 s later
        # (less the real time between the two calls).
        assert 0 < paced - held <= 0.1  # a burst right after the hold would give <= 0
        assert first.stats["holds"] == 1
        # A shorter hold never shortens a longer one.
        await first.on_rate_limited("create", 0.5)
        assert 0.9 <= await seen.pttl(f"{{{prefix}}}:rate:create:hold") / 1000 <= 1.9
        assert not await seen.exists(f"{{{prefix}}}:rate:create:learned")  # nothing learned
    finally:
        await first.aclose()
        await second.aclose()
        await seen.aclose()
        await other.aclose()


async def test_a_long_retry_after_slows_the_fleet_to_the_accounts_pace(
    aredis: aioredis.Redis, prefix: str
) -> None:
    # A low-credit account answers creates beyond 6 a minute (burst 1) with Retry-After
    # of several seconds: one token per Retry-After, and no burst, from then on.
    clock = RecordingClock()
    shared = limiter(aredis, prefix, clock, create_per_minute=600, learn_for=120)
    await shared.on_rate_limited("create", 2.0)
    for _ in range(3):
        await shared.acquire("create")
    assert clock.sleeps == [pytest.approx(s, abs=0.3) for s in (2.0, 4.0, 6.0)]
    learned = f"{{{prefix}}}:rate:create:learned"
    assert 119 <= await aredis.pttl(learned) / 1000 <= 120
    assert shared.learned_pace == 2.0
    # More 429s at that pace (requests already sent) teach nothing slower than the
    # account said: as one process's throttle, one token per Retry-After.
    await shared.on_rate_limited("create", 2.0)
    await shared.on_rate_limited("create", 1.0)
    assert int(await aredis.hget(learned, "interval")) == 2_000_000
    # A longer Retry-After is learned at once.
    await shared.on_rate_limited("create", 5.0)
    assert int(await aredis.hget(learned, "interval")) == 5_000_000


# Redis keeps real time while RecordingClock's sleeps return at once: the tests below
# wait out a hold for real (a 3 s stand-in for the live API's 30 s), then add up the sleeps
# each request asked for.
HOLD = 3.0


async def test_only_creates_learn_a_pace(aredis: aioredis.Redis, prefix: str) -> None:
    clock = RecordingClock()
    shared = limiter(aredis, prefix, clock)
    await shared.on_rate_limited("other", HOLD)
    assert not await aredis.exists(f"{{{prefix}}}:rate:other:learned")
    await asyncio.sleep(HOLD + 0.1)
    for _ in range(5):
        await shared.acquire("other")
    assert clock.sleeps == []  # the hold is over; no slower pace was learned for "other"


async def test_polls_after_a_long_hold_flow_again_across_workers(
    redis_server: RedisServer, prefix: str
) -> None:
    # A 429 with a long Retry-After on a create and on a list (the "other" bucket), seen
    # by worker A. After the hold, 20 prediction GETs (their own bucket) and 20 other
    # requests from workers A and B go at the account's pace: within 5 s all told, not
    # one per Retry-After.
    one, two = (aioredis.Redis.from_url(redis_server.url) for _ in range(2))
    clocks = [RecordingClock(), RecordingClock()]
    workers = [limiter(one, prefix, clocks[0]), limiter(two, prefix, clocks[1])]
    try:
        await workers[0].on_rate_limited("create", HOLD)
        await workers[0].on_rate_limited("other", HOLD)
        await asyncio.sleep(HOLD + 0.1)
        for i in range(20):
            await workers[i % 2].acquire("prediction_get")  # type: ignore[arg-type]
            await workers[i % 2].acquire("other")
        sleeps = clocks[0].sleeps + clocks[1].sleeps
        assert sum(sleeps) <= 5, sleeps
        assert workers[0].stats["holds"] == 2
    finally:
        for each in workers:
            await each.aclose()
        await one.aclose()
        await two.aclose()


async def test_creates_regain_the_accounts_rate_once_tokens_show(
    aredis: aioredis.Redis, prefix: str
) -> None:
    # A low-credit pace was learned (one create per Retry-After). Credit is added:
    # responses now show spare create tokens. Within 2 Retry-Afters (the live API's 60 s
    # for 30 s) of such responses, creates go at the account's rate again.
    clock = RecordingClock()
    shared = limiter(aredis, prefix, clock, create_per_minute=600, create_burst=1)
    await shared.on_rate_limited("create", HOLD)
    assert shared.learned_pace == HOLD
    await asyncio.sleep(HOLD + 0.1)
    for _ in range(10):
        await shared.acquire("create")
        shared.observe("create", 500)
    assert sum(clock.sleeps) <= 2 * HOLD, clock.sleeps
    await shared.acquire("create")
    assert shared.learned_pace is None  # back to the configured pace: 600 a minute
    assert not await aredis.exists(f"{{{prefix}}}:rate:create:learned")


async def test_a_paced_create_without_spare_tokens_keeps_its_pace(
    aredis: aioredis.Redis, prefix: str
) -> None:
    clock = RecordingClock()
    shared = limiter(aredis, prefix, clock, create_per_minute=600)
    await shared.on_rate_limited("create", 10.0)
    for _ in range(3):
        await shared.acquire("create")
        shared.observe("create", 0)  # a low-credit account: no token to spare
    assert shared.learned_pace == 10.0
    assert clock.sleeps == [pytest.approx(s, abs=0.3) for s in (10.0, 20.0, 30.0)]


async def test_a_waiting_request_rechecks_the_hold(aredis: aioredis.Redis, prefix: str) -> None:
    clock = RecordingClock()
    waiting = limiter(aredis, prefix, clock, create_per_minute=6, create_burst=1)
    elsewhere = limiter(aredis, prefix, RecordingClock(), create_per_minute=6, create_burst=1)
    await waiting.acquire("create")  # the burst slot

    async def hold_meanwhile() -> None:
        await elsewhere.on_rate_limited("create", 30.0)

    clock.during_sleep = hold_meanwhile
    await waiting.acquire("create")
    assert len(clock.sleeps) == 2
    assert 7.0 <= clock.sleeps[0] <= 10.0
    assert 25.0 <= clock.sleeps[1] <= 30.1


async def test_unreachable_redis_throttles_locally_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    clock = RecordingClock()
    shared = RedisRateLimiter(dead, clock=clock, operation_timeout=1.0)
    assert isinstance(shared, RateLimiter)
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    try:
        async with asyncio.timeout(30):  # a hang guard: nothing may block on Redis
            for _ in range(3):
                await shared.acquire("create")
            await shared.on_rate_limited("create", 60.0)
            await shared.acquire("create")
    finally:
        await shared.aclose()
        await dead.aclose()
    assert shared.stats["local"] == 4
    assert not shared.using_redis
    warnings = [r for r in caplog.records if r.name == "replicate_async.redis"]
    assert len(warnings) == 1
    assert "Redis unreachable" in warnings[0].getMessage()
    # The client's own throttle took over: unpaced until the 429, then its minute held
    # (the other sleeps are the background probe's, at most 2 s each).
    held = [s for s in clock.sleeps if s > 2]
    assert len(held) == 1
    assert 60 <= held[0] <= 66


async def test_redis_stopping_mid_run_hands_over_and_back(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="replicate_async.redis")
    connection = aioredis.Redis.from_url(own_redis.url, socket_connect_timeout=1)
    shared = RedisRateLimiter(
        connection, prefix=prefix, other_per_minute=60_000, operation_timeout=1.0
    )
    try:
        async with asyncio.timeout(60):
            for _ in range(10):
                await shared.acquire("other")
            assert shared.stats["local"] == 0
            own_redis.stop()
            for _ in range(10):
                await shared.acquire("other")
            assert shared.stats["local"] == 10
            own_redis.start()
            await until(lambda: shared.using_redis, 30)  # the background probe finds it
            for _ in range(10):
                await shared.acquire("other")
    finally:
        await shared.aclose()
        await connection.aclose()
    assert shared.stats["local"] == 10
    messages = [r for r in caplog.records if r.name == "replicate_async.redis"]
    assert [r.levelname for r in messages] == ["WARNING", "INFO"]
    assert "unreachable" in messages[0].getMessage()
    assert "reachable again" in messages[1].getMessage()


def test_bad_rates_are_refused(aredis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="positive"):
        RedisRateLimiter(aredis, create_per_minute=0)
    with pytest.raises(ValueError, match="local_share"):
        RedisRateLimiter(aredis, local_share=0)


async def test_a_kind_the_limiter_does_not_know_counts_as_other(
    aredis: aioredis.Redis, prefix: str
) -> None:
    clock = RecordingClock()
    shared = limiter(aredis, prefix, clock, other_per_minute=60, other_burst=1)
    await shared.acquire("trainings_get")  # type: ignore[arg-type]
    await shared.on_rate_limited("trainings_get", None)  # type: ignore[arg-type]
    assert await aredis.exists(f"{{{prefix}}}:rate:other:tat", f"{{{prefix}}}:rate:other:hold") == 2
    await shared.acquire("other")
    assert len(clock.sleeps) == 1  # the second "other" waited behind the first
