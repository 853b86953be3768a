"""RedisRateLimiter against a real redis-server: pacing, the shared hold, the fallback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from replicate_async._throttle import RateLimiter
from replicate_async.redis import RedisRateLimiter

from ._servers import RedisServer, free_port


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
        assert 0.9 <= await seen.pttl(f"{prefix}:rate:create:hold") / 1000 <= 1.9
        assert not await seen.exists(f"{prefix}:rate:create:learned")  # nothing learned
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
    learned = f"{prefix}:rate:create:learned"
    assert 119 <= await aredis.pttl(learned) / 1000 <= 120
    # Still limited at that pace one interval later, told to wait 2 s more: a token takes
    # more than 2 + 2 - 1 s.
    await asyncio.sleep(2.05)
    await shared.on_rate_limited("create", 2.0)
    assert int(await aredis.hget(learned, "interval")) == 3_000_000
    # Right after a lesson, another 429 (from requests already sent) teaches nothing new.
    await shared.on_rate_limited("create", 2.0)
    assert int(await aredis.hget(learned, "interval")) == 3_000_000
    # A 1 s Retry-After at the learned pace: at least 10 % slower.
    await asyncio.sleep(3.05)
    await shared.on_rate_limited("create", 1.0)
    assert int(await aredis.hget(learned, "interval")) == 3_300_000


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
    # The client's own throttle took over: unpaced until the 429, then its minute held.
    assert len(clock.sleeps) == 1
    assert 60 <= clock.sleeps[0] <= 66


async def test_redis_stopping_mid_run_hands_over_and_back(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="replicate_async.redis")
    clock = RecordingClock()
    connection = aioredis.Redis.from_url(own_redis.url, socket_connect_timeout=1)
    shared = limiter(connection, prefix, clock, other_per_minute=60_000, operation_timeout=1.0)
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
            clock.offset += 2.0  # past the first back-off: the next request probes Redis
            for _ in range(10):
                await shared.acquire("other")
    finally:
        await shared.aclose()
        await connection.aclose()
    assert shared.using_redis
    assert shared.stats["local"] == 10
    messages = [r.getMessage() for r in caplog.records if r.name == "replicate_async.redis"]
    assert len(messages) == 2
    assert "unreachable" in messages[0]
    assert "reachable again" in messages[1]


def test_bad_rates_are_refused(aredis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="positive"):
        RedisRateLimiter(aredis, create_per_minute=0)
    with pytest.raises(ValueError, match="local_share"):
        RedisRateLimiter(aredis, local_share=0)
