"""What the short default hold costs: ``run()`` latency with ``wait=5`` vs ``wait=True`` (60 s).

Runs on virtual time (the fake and the client share a ``ManualClock``), so model durations
of tens of seconds take a few real seconds and the numbers do not depend on machine load::

    python -m benchmarks.hold_latency            # durations 1..40 s
    python -m benchmarks.hold_latency --quick    # three durations

For each model duration: the virtual seconds from calling ``run()`` to its return (the
duration itself plus what was lost noticing the end), and the requests it took.
"""

from __future__ import annotations

import argparse
import asyncio

from replicate_async.testing import FakeReplicate, ManualClock

#: Virtual seconds per step, and real seconds given to the loop per step.
STEP = 0.05
REAL = 0.002


async def _one(duration: float, wait: bool | int) -> tuple[float, int]:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake:
        fake.set_model_behaviour("fake/slow", duration=duration)
        async with fake.client(clock=clock) as client:
            start = clock.monotonic()
            task = asyncio.ensure_future(client.run("fake/slow", input={}, wait=wait))
            for _ in range(int((duration + 120) / STEP)):
                if task.done():
                    break
                clock.advance(STEP)
                await asyncio.sleep(REAL)
            await task
            return clock.monotonic() - start, len(fake.requests)


async def main(quick: bool) -> None:
    durations = [1.0, 6.0, 20.0] if quick else [1.0, 3.0, 6.0, 8.0, 12.0, 20.0, 30.0, 40.0]
    print("| model s | wait=5: s (requests) | wait=True: s (requests) | cost of the short hold |")
    print("|---:|---:|---:|---:|")
    costs = []
    for duration in durations:
        short, short_requests = await _one(duration, 5)
        long, long_requests = await _one(duration, True)
        costs.append(short - long)
        print(
            f"| {duration:g} | {short:.2f} ({short_requests}) | {long:.2f} ({long_requests})"
            f" | {short - long:+.2f} s |"
        )
    slow = [c for d, c in zip(durations, costs, strict=True) if d > 5]
    if slow:
        print(f"\nmean cost for runs over 5 s: {sum(slow) / len(slow):+.2f} s (step {STEP} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
