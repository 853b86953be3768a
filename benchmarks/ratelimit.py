"""Fan-out against Replicate's rate limits, on the embedded fake (issue #11's "Done when").

Each scenario runs a fresh :class:`FakeReplicate` with token-bucket limits and one client
with the default throttle, in real time, all scenarios at once (they are rate-bound, not
CPU-bound: the whole run takes about as long as the slowest, ~190 s):

- ``600/min, burst 600``: 2,000 creates at concurrency 128 (and 32). Ideal: the burst
  goes at once, the remaining 1,400 at 10/s: 140 s. Target: 0 failures, time <= 1.05 x
  ideal, 429s <= 5 % of requests.
- ``low credit, 6/min, burst 1``: 20 ``client.run(..., timeout=300)`` at once. Ideal: one
  now, then one every 10 s: 190 s. Target: 20/20.

Run: ``python -m benchmarks.ratelimit [--only fast|low] [--creates N]`` (prints a table).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from replicate_async import AsyncReplicate, RateLimitError
from replicate_async.testing import FakeReplicate

#: Hard bound on any scenario (real seconds): a broken throttle cannot hang the run.
SCENARIO_LIMIT = 600.0


@attrs.frozen
class Outcome:
    """One scenario's result."""

    name: str
    calls: int
    ok: int
    rate_limited: int
    other_failures: int
    requests: int
    throttled: int
    elapsed: float
    ideal: float

    def row(self) -> str:
        """A Markdown table row."""
        share = self.throttled / self.requests if self.requests else 0.0
        return (
            f"| {self.name} | {self.ok}/{self.calls} | {self.rate_limited} | "
            f"{self.other_failures} | {self.requests:,} | {self.throttled} ({share:.1%}) | "
            f"{self.elapsed:.1f} s | {self.ideal:.0f} s | {self.elapsed / self.ideal:.3f} |"
        )


HEADER = (
    "| scenario | ok | failed: RateLimitError | failed: other | requests | 429s (share) "
    "| time | ideal | time ÷ ideal |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: |"
)


async def _bounded(
    name: str,
    calls: list[Callable[[], Awaitable[Any]]],
    concurrency: int,
    client: AsyncReplicate,
    ideal: float,
) -> Outcome:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    started = time.perf_counter()
    async with asyncio.timeout(SCENARIO_LIMIT):
        results = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
    elapsed = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    limited = sum(isinstance(e, RateLimitError) for e in errors)
    return Outcome(
        name=name,
        calls=len(calls),
        ok=len(calls) - len(errors),
        rate_limited=limited,
        other_failures=len(errors) - limited,
        requests=client.stats["requests"],
        throttled=client.stats["throttled"],
        elapsed=elapsed,
        ideal=ideal,
    )


async def fast(creates: int, concurrency: int) -> Outcome:
    """``creates`` prediction creates at ``concurrency`` against 600/min, burst 600."""
    async with (
        FakeReplicate(
            rate_limits_enabled=True,
            create_limit_per_minute=600,
            create_burst=600,
            record_requests=False,
        ) as fake,
        fake.client(timeout=300) as client,
    ):
        calls = [
            lambda i=i: client.models.predictions.create("fake/echo", input={"i": i})
            for i in range(creates)
        ]
        ideal = max(creates - 600, 0) / 10.0
        name = f"600/min burst 600: {creates:,} creates, concurrency {concurrency}"
        return await _bounded(name, calls, concurrency, client, ideal)


async def low_credit(runs: int) -> Outcome:
    """``runs`` concurrent ``run(timeout=300)`` against 6/min, burst 1."""
    async with (
        FakeReplicate(rate_limits_enabled=True, create_limit_per_minute=6, create_burst=1) as fake,
        fake.client() as client,
    ):
        calls = [
            lambda i=i: client.run("fake/echo", input={"text": str(i)}, timeout=300)
            for i in range(runs)
        ]
        name = f"low credit, 6/min burst 1: {runs} x run(timeout=300) at once"
        return await _bounded(name, calls, runs, client, (runs - 1) * 10.0)


async def main(only: str | None, creates: int) -> list[Outcome]:
    """Run the scenarios concurrently; return their outcomes in a fixed order."""
    jobs: list[Awaitable[Outcome]] = []
    if only in (None, "fast"):
        jobs += [fast(creates, 128), fast(creates, 32)]
    if only in (None, "low"):
        jobs.append(low_credit(20))
    return list(await asyncio.gather(*jobs))


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["fast", "low"])
    parser.add_argument("--creates", type=int, default=2000)
    args = parser.parse_args()
    outcomes = asyncio.run(main(args.only, args.creates))
    print(HEADER)
    for outcome in outcomes:
        print(outcome.row())


if __name__ == "__main__":
    _cli()
