"""What a shared rate limit costs per request, and why it is a Lua GCRA.

``python -m benchmarks.redis_limiter [--quick]`` starts a redis-server on a free port and
times ``acquire("create")`` with budgets too large to ever wait, so only the bookkeeping
is measured:

- ``Throttle``: the client's in-process default (no network);
- ``RedisRateLimiter``: one ``EVALSHA`` of a GCRA (a single timestamp per kind, Redis's
  clock, the 429 hold read in the same script);
- a Lua token bucket (two hash fields, the same round trip, more work per call);
- the ``limits`` library's async Redis strategies (``pip install limits``), if installed:
  they answer yes/no instead of reserving a slot, so a caller that is refused must poll.

One coroutine (latency, p50/p99 microseconds) and 32 at once (throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from replicate_async._core.throttle import Throttle
from replicate_async.redis import RedisRateLimiter
from tests.redis._servers import RedisServer, redis_executable

_TOKEN_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - stamp) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tokens, 'stamp', now)
redis.call('PEXPIRE', KEYS[1], 60000)
return tostring(wait)
"""

Acquire = Callable[[], Awaitable[Any]]


async def measure(acquire: Acquire, count: int) -> dict[str, float]:
    for _ in range(min(200, count)):  # warm up: connections, script cache
        await acquire()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await acquire()
        samples.append(time.perf_counter() - started)
    samples.sort()
    started = time.perf_counter()

    async def lane() -> None:
        for _ in range(count // 32):
            await acquire()

    await asyncio.gather(*(lane() for _ in range(32)))
    rate = (count // 32) * 32 / (time.perf_counter() - started)
    return {
        "p50 us": round(samples[len(samples) // 2] * 1e6, 1),
        "p99 us": round(samples[int(len(samples) * 0.99)] * 1e6, 1),
        "acquires/s (32 at once)": round(rate),
    }


async def contenders(url: str) -> list[tuple[str, Acquire, Callable[[], Awaitable[None]]]]:
    huge = 1e12
    throttle = Throttle(create_per_minute=huge)
    shared = RedisRateLimiter.from_url(url, prefix=uuid.uuid4().hex, create_per_minute=huge)
    bucket_redis = aioredis.Redis.from_url(url)
    bucket = bucket_redis.register_script(_TOKEN_BUCKET)
    key = uuid.uuid4().hex
    found: list[tuple[str, Acquire, Callable[[], Awaitable[None]]]] = [
        ("Throttle (in-process)", lambda: throttle.acquire("create"), throttle.aclose),
        ("RedisRateLimiter (Lua GCRA)", lambda: shared.acquire("create"), shared.aclose),
        (
            "Lua token bucket",
            lambda: bucket(keys=[key], args=[huge, huge]),
            bucket_redis.aclose,
        ),
    ]
    try:
        from limits import parse
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
    except ImportError:
        return found
    storage = RedisStorage("async+" + url, implementation="redispy")
    item = parse("1000000000/minute")

    async def close_storage() -> None:
        pass

    strategies = {"fixed window": FixedWindowRateLimiter, "moving window": MovingWindowRateLimiter}
    for name, strategy in strategies.items():
        limiter = strategy(storage)
        ident = uuid.uuid4().hex

        def hit(lim: Any = limiter, i: str = ident) -> Awaitable[bool]:
            return lim.hit(item, i)  # type: ignore[no-any-return]

        found.append((f"limits {name} (yes/no)", hit, close_storage))
    return found


async def main(quick: bool) -> None:
    executable = redis_executable()
    if executable is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(executable)
    server.start()
    count = 640 if quick else 6400
    rows = []
    try:
        for name, acquire, close in await contenders(server.url):
            rows.append({"limiter": name, **await measure(acquire, count)})
            await close()
    finally:
        server.close()
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    asyncio.run(main(parser.parse_args().quick))
