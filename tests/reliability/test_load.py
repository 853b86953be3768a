"""Load: many concurrent runs through one client, and a long pagination walk.

Sizes are CI-sized by default and full-sized with ``REPLICATE_ASYNC_FULL_LOAD=1``
(10,000 concurrent runs; a 200,000-item walk compared with a 20,000-item one). Both sizes
run the same assertions; the figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
import warnings

from replicate_async import AsyncReplicate
from replicate_async.testing import FakeReplicate
from tests.helpers import eventually

from ._support import LoopErrors, ServerMeter, open_client_objects

FULL = os.environ.get("REPLICATE_ASYNC_FULL_LOAD") == "1"
RUNS = 10_000 if FULL else 2_000
WALK_SMALL, WALK_BIG = (20_000, 200_000) if FULL else (1_000, 10_000)
MAX_CONNECTIONS = 50
#: Python heap per concurrent run, for everything: the task, the client's request and
#: response, the result kept by gather, and the fake server's stored prediction.
BYTES_PER_RUN = 48 * 1024


def _sdk_tasks() -> list[asyncio.Task[object]]:
    """Live tasks running SDK code (not the fake server's, not the test's)."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if "replicate_async" in filename and "testing" not in filename:
            found.append(task)
    return found


async def test_concurrent_runs_through_one_client(loop_errors: LoopErrors) -> None:
    fake = FakeReplicate(record_requests=False)  # zero durations: runs end in their hold
    meter = ServerMeter(fake)
    async with fake:
        version = fake.latest_version_id("fake/echo")
        gc.collect()
        me = asyncio.current_task()
        before = asyncio.all_tasks()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tracemalloc.start()
            started = time.perf_counter()
            async with fake.client(max_connections=MAX_CONNECTIONS) as client:
                async with asyncio.timeout(300):  # bounded: fails rather than hangs
                    outputs = await asyncio.gather(
                        *(client.run(f"fake/echo:{version}", input={"i": i}) for i in range(RUNS))
                    )
                elapsed = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                stats = dict(client.stats)
                left_open = open_client_objects()  # before the close would release them
            sdk_leftovers = _sdk_tasks()
            # The fake's per-connection handlers end once they see the client's sockets close.
            await eventually(lambda: not (asyncio.all_tasks() - before - {me}), timeout=10.0)
            await eventually(lambda: meter.open_now() == 0, timeout=10.0)
            del outputs[1:-1]  # (keep the ends to check below; free the rest)
            gc.collect()
    print(
        f"\n{RUNS} concurrent runs: {elapsed:.2f}s ({RUNS / elapsed:.0f}/s); "
        f"peak open sockets {meter.peak_open} (limit {MAX_CONNECTIONS}), "
        f"{meter.total} sockets opened in all; peak requests in flight "
        f"{meter.peak_in_flight}; tracemalloc peak {peak / 2**20:.1f} MiB "
        f"({peak / RUNS / 1024:.1f} KiB per run)"
    )
    assert outputs == [{"i": 0}, {"i": RUNS - 1}]
    assert meter.handled == RUNS  # one create per run: each ended inside its Prefer: wait hold
    assert stats == {"requests": RUNS, "retries": 0, "throttled": 0}
    assert 1 <= meter.peak_open <= MAX_CONNECTIONS
    assert meter.total <= MAX_CONNECTIONS  # connections were reused, never churned
    assert meter.peak_in_flight <= MAX_CONNECTIONS
    assert sdk_leftovers == []
    assert left_open == []
    assert [str(w.message) for w in caught] == []
    assert loop_errors.contexts == [], loop_errors.messages
    assert peak < RUNS * BYTES_PER_RUN


async def _walk(client: AsyncReplicate, count: int) -> tuple[int, float]:
    """Walk ``count`` items, checking each is the next one; the walk's heap peak."""
    gc.collect()
    tracemalloc.reset_peak()
    baseline, _ = tracemalloc.get_traced_memory()
    started = time.perf_counter()
    seen = 0
    async for prediction in client.predictions.list():
        # Synthetic predictions come newest first as synth000...0, 1, 2...: nothing may
        # be skipped, repeated or reordered across page boundaries.
        assert prediction.id == f"synth{seen:021d}"
        seen += 1
        if seen == count:
            break
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    assert seen == count
    return peak - baseline, elapsed


async def test_long_walk_has_flat_memory(loop_errors: LoopErrors) -> None:
    fake = FakeReplicate(record_requests=False, seed=False)
    fake.add_predictions(WALK_BIG)
    async with fake, fake.client() as client:
        tracemalloc.start()
        try:
            async with asyncio.timeout(600):  # bounded: fails rather than hangs
                small, small_time = await _walk(client, WALK_SMALL)
                big, big_time = await _walk(client, WALK_BIG)
        finally:
            tracemalloc.stop()
    print(
        f"\nwalk {WALK_SMALL:,} items: peak +{small / 2**20:.2f} MiB in {small_time:.1f}s; "
        f"walk {WALK_BIG:,} items: peak +{big / 2**20:.2f} MiB in {big_time:.1f}s "
        "(tracemalloc on)"
    )
    # One page at a time: ten times the items, not more memory (retaining the items would
    # take ten times as much).
    assert big < small * 1.5 + 256 * 1024
