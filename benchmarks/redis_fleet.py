"""Many workers, one account: the Redis fleet pieces measured end to end.

``python -m benchmarks.redis_fleet [--quick]`` starts a redis-server and the fake (each in
its own process) and reports:

- **rate limits**: 4 worker processes x N creates against 600/min sped up 20x (12,000/min,
  burst 20), and 4 x 3 against a low-credit account (6/min, burst 1, sped up 5x), with
  the shared ``RedisRateLimiter`` and with each process's own ``Throttle``: failures,
  429s, wall time;
- **webhooks**: 200 runs across 4 workers behind one port; delivery -> waiter latency
  (p50/p99) when the delivery lands on another worker than the waiting one;
- **orphans**: kill -> cancel latency of a killed worker's runs (lease 1 s);
- **per-acquire cost**: one ``RedisRateLimiter.acquire`` (budget never exhausted, so only
  the round trip and the script) on a single node and on a local 3-master Redis Cluster,
  beside the in-process ``Throttle``: p50/p99 latency of one caller, throughput of 32.

Needs ``redis-server`` and ``redis-cli`` on PATH (Debian package ``redis-server``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from redis.asyncio.cluster import RedisCluster as ClusterClient

from replicate_async._core.throttle import Throttle
from replicate_async.redis import RedisRateLimiter, connect
from tests.redis._servers import (
    FakeProcess,
    RedisCluster,
    RedisServer,
    Worker,
    free_port,
    redis_executable,
)

WORKERS = 4


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def rate_limits(
    redis: RedisServer, per_worker: int, shared: bool, low_credit: bool = False
) -> dict[str, Any]:
    # Low credit: 6 creates a minute, burst 1, sped up 5x (Retry-After stays >= 2 s).
    per_minute, burst = (30, 1) if low_credit else (12_000, 20)
    fake = FakeProcess(
        rate_limits_enabled=True, create_limit_per_minute=per_minute, create_burst=burst
    )
    config = {
        "mode": "creates",
        "base_url": fake.base_url,
        "token": fake.token,
        "redis_url": redis.url if shared else None,
        "prefix": uuid.uuid4().hex,
        "count": per_worker,
        "concurrency": 32,
        # The workers are told the documented rate, sped up; a low-credit one must learn.
        "create_per_minute": 600 if low_credit else 12_000,
        "create_burst": 10,
        "operation_timeout": 2.0,
    }
    started = time.monotonic()
    workers = [await Worker.start({**config, "index": i}) for i in range(WORKERS)]
    results = [r for r, _ in await asyncio.gather(*(w.finish(300) for w in workers))]
    elapsed = time.monotonic() - started
    creates = fake.command(op="summary")["creates"]
    fake.close()
    ok, limited = creates.get("201", 0), creates.get("429", 0)
    return {
        "account": "low credit (30/min, burst 1)" if low_credit else "12,000/min, burst 20",
        "limiter": "shared (Redis)" if shared else "per process (Throttle)",
        "creates": WORKERS * per_worker,
        "failed": sum(r["failed"] for r in results),
        "created": ok,
        "429s": limited,
        "429 share": f"{limited / max(1, ok + limited):.1%}",
        "seconds": round(elapsed, 1),
        "ideal seconds": round((WORKERS * per_worker - burst) / (per_minute / 60), 1),
    }


async def webhooks(redis: RedisServer) -> dict[str, Any]:
    fake = FakeProcess(default_duration=0.3)
    config: dict[str, Any] = {
        "mode": "webhooks",
        "base_url": fake.base_url,
        "token": fake.token,
        "redis_url": redis.url,
        "prefix": uuid.uuid4().hex,
        "count": 50,
        "port": free_port(),
        "safety_poll": 60.0,
    }
    workers = [await Worker.start({**config, "index": i}) for i in range(WORKERS)]
    for worker in workers:
        await worker.line()
    for worker in workers:
        worker.send()
    for worker in workers:
        await worker.line()
    results = [r for r, _ in await asyncio.gather(*(w.finish() for w in workers))]
    fake.close()
    delivered = {t: (i, at) for i, r in enumerate(results) for t, at in r["delivered"].items()}
    cross, local = [], []
    for i, result in enumerate(results):
        for text, done in result["resolved"].items():
            where, at = delivered[text]
            (local if where == i else cross).append((done - at) * 1000)
    return {
        "runs": len(delivered),
        "delivered to another worker": len(cross),
        "cross-worker p50 ms": round(_pct(cross, 0.5), 2),
        "cross-worker p99 ms": round(_pct(cross, 0.99), 2),
        "same-worker p50 ms": round(_pct(local, 0.5), 2) if local else None,
        "safety polls": sum(r["stats"]["safety_polls"] for r in results),
    }


async def orphans(redis: RedisServer, rounds: int) -> dict[str, Any]:
    latencies = []
    for _ in range(rounds):
        fake = FakeProcess(slow_duration=120)
        config = {
            "mode": "tracked",
            "base_url": fake.base_url,
            "token": fake.token,
            "redis_url": redis.url,
            "prefix": uuid.uuid4().hex,
            "count": 3,
            "lease": 1.0,
        }
        workers = [await Worker.start({**config, "index": i}) for i in range(2)]
        ids = [(await w.line())["ids"] for w in workers]
        killed = time.time()
        workers[0].kill()
        for _ in range(300):
            summary = fake.command(op="summary")
            if all(pid in summary["cancels"] for pid in ids[0]):
                break
            await asyncio.sleep(0.05)
        latencies.append(max(summary["cancel_times"][pid] for pid in ids[0]) - killed)
        await workers[1].finish()
        await workers[0].process.wait()
        fake.close()
    return {
        "lease s": 1.0,
        "kill -> last cancel s (median)": round(statistics.median(latencies), 2),
        "max": round(max(latencies), 2),
    }


async def _acquire_cost(name: str, limiter: Any, calls: int) -> dict[str, Any]:
    for _ in range(50):  # warm-up: connections, script cache
        await limiter.acquire("create")
    single = []
    for _ in range(calls):
        started = time.perf_counter()
        await limiter.acquire("create")
        single.append((time.perf_counter() - started) * 1e6)
    started = time.perf_counter()
    await asyncio.gather(*(limiter.acquire("create") for _ in range(32 * (calls // 32))))
    crowd = time.perf_counter() - started
    await limiter.aclose()
    return {
        "limiter": name,
        "p50 us": round(_pct(single, 0.5), 1),
        "p99 us": round(_pct(single, 0.99), 1),
        "32 at once, acquires/s": round(32 * (calls // 32) / crowd),
    }


async def acquire_costs(
    redis: RedisServer, cluster: RedisCluster, calls: int
) -> list[dict[str, Any]]:
    # Budgets far beyond the calls made: nobody waits, only the bookkeeping is timed.
    budget: dict[str, Any] = {
        "create_per_minute": 10**9,
        "create_burst": 10**9,
        "prefix": uuid.uuid4().hex,
    }
    node = RedisRateLimiter(connect(redis.url), close_redis=True, **budget)
    spread = RedisRateLimiter(ClusterClient.from_url(cluster.url), close_redis=True, **budget)
    return [
        await _acquire_cost("Throttle (in process)", Throttle(), calls),
        await _acquire_cost("RedisRateLimiter, single node", node, calls),
        await _acquire_cost("RedisRateLimiter, 3-master cluster", spread, calls),
    ]


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


async def main(quick: bool) -> None:
    executable = redis_executable()
    if executable is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    redis = RedisServer(executable)
    redis.start()
    cluster = RedisCluster(executable)
    cluster.start()
    try:
        costs = await acquire_costs(redis, cluster, 500 if quick else 5000)
        print("## Per-acquire cost\n\n" + _table(costs) + "\n")
        per_worker = 100 if quick else 500
        limits = [await rate_limits(redis, per_worker, shared) for shared in (True, False)]
        limits += [await rate_limits(redis, 3, shared, low_credit=True) for shared in (True, False)]
        print("## Rate limits: 4 processes\n\n" + _table(limits) + "\n")
        print("## Webhooks: 200 runs, 4 workers, one port\n\n" + _table([await webhooks(redis)]))
        print("\n## Orphans\n\n" + _table([await orphans(redis, 1 if quick else 5)]))
    finally:
        redis.close()
        cluster.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    asyncio.run(main(parser.parse_args().quick))
