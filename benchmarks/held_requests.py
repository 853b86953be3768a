"""Quick-call latency while many runs are held: held creates must not starve a ``GET``.

Against the embedded fake on 127.0.0.1 (real time)::

    python -m benchmarks.held_requests               # 150 held runs, max_connections=100
    python -m benchmarks.held_requests --held 300 --samples 50

Prints the median and worst latency of ``GET /models/{owner}/{name}`` with no run in flight,
then with ``--held`` runs of a 60 s model inside their ``Prefer: wait`` hold (more than
``max_connections``: the extra ones queue for a held slot). Held creates and streams have a
connection budget of their own, so the two rows should be close.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from replicate_async import AsyncReplicate
from replicate_async.testing import FakeReplicate


async def _latencies(client: AsyncReplicate, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await client.models.get("fake/upper")
        times.append((time.perf_counter() - started) * 1000)
    return times


def _row(name: str, times: list[float]) -> str:
    return f"| {name} | {statistics.median(times):.2f} | {max(times):.2f} |"


async def main(held: int, samples: int, max_connections: int) -> None:
    async with FakeReplicate(slow_duration=60) as fake:
        async with fake.client(max_connections=max_connections) as client:
            await _latencies(client, 5)  # warm the pool
            idle = await _latencies(client, samples)
            runs = [
                asyncio.ensure_future(client.run("fake/slow", input={}, wait=60))
                for _ in range(held)
            ]
            for _ in range(500):  # until every held slot is on the wire
                if fake.count("POST", "/v1/models/fake/slow/predictions") >= min(
                    held, max_connections
                ):
                    break
                await asyncio.sleep(0.01)
            busy = await _latencies(client, samples)
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
        print(f"max_connections={max_connections}, {held} runs held, {samples} GETs each\n")
        print("| quick GET | median ms | worst ms |")
        print("|---|---:|---:|")
        print(_row("idle", idle))
        print(_row(f"{held} runs held", busy))
        print(f"\nratio of medians: {statistics.median(busy) / statistics.median(idle):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", type=int, default=150)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--max-connections", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.held, args.samples, args.max_connections))
