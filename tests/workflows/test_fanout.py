"""Fan-out: 10,000 runs on 20 sockets, run_many, and cooperative 429 throttling."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import attrs
import pytest

from replicate_async import (
    AsyncReplicate,
    Hooks,
    ModelError,
    Progress,
    RateLimitError,
    RequestEvent,
    ResponseEvent,
    RetryPolicy,
    RunResult,
    UnprocessableEntityError,
)
from replicate_async.testing import FakeReplicate
from tests.helpers import eventually

from ._proxy import CountingProxy
from .conftest import FAST_POLL

FANOUT = 10_000
MAX_CONNECTIONS = 20


async def test_ten_thousand_concurrent_runs_on_twenty_sockets() -> None:
    """``asyncio.gather`` of 10,000 ``run()`` calls on one client: all complete, nothing
    times out waiting for the pool, and the client never holds more than 20 sockets.

    Sockets are counted by a TCP relay in front of the fake (``CountingProxy``): it sees
    every connection the client opens, whatever aiohttp does inside.
    """
    async with (
        FakeReplicate(record_requests=False) as fake,
        CountingProxy(fake.port) as proxy,
        AsyncReplicate(
            api_token=fake.token,
            base_url=f"http://127.0.0.1:{proxy.port}/v1",
            max_connections=MAX_CONNECTIONS,
        ) as client,
    ):
        started = time.perf_counter()
        outputs = await asyncio.wait_for(
            asyncio.gather(
                *(client.run("fake/echo", input={"text": str(i)}) for i in range(FANOUT))
            ),
            timeout=60,
        )
        elapsed = time.perf_counter() - started
        assert outputs == [{"text": str(i)} for i in range(FANOUT)]
        assert client.stats == {"requests": FANOUT, "retries": 0, "throttled": 0}
        assert 1 <= proxy.peak <= MAX_CONNECTIONS
        assert proxy.accepted <= MAX_CONNECTIONS  # kept alive and reused, never churned
    print(
        f"\nFIGURE fan-out: {FANOUT} runs in {elapsed:.2f}s "
        f"({FANOUT / elapsed:.0f}/s), peak sockets {proxy.peak}, opened {proxy.accepted}, "
        f"requests per prediction {client.stats['requests'] / FANOUT:.2f}"
    )


def snapshot(progress: Progress) -> Progress:
    return attrs.evolve(progress)


async def test_run_many_yields_every_result_with_its_input(client: AsyncReplicate) -> None:
    """Invalid inputs (422) fail alone; every result carries its input; progress adds up."""
    inputs: list[dict[str, Any]] = [{"text": f"item {i}"} for i in range(40)]
    for bad in (3, 17, 31):
        inputs[bad] = {"wrong": bad}  # fake/upper: text is required, nothing else allowed
    progress: list[Progress] = []
    results: list[RunResult] = []
    async for result in client.run_many(
        "fake/upper", inputs, concurrency=8, on_progress=lambda p: progress.append(snapshot(p))
    ):
        results.append(result)

    assert sorted(r.index for r in results) == list(range(40))
    for result in results:
        assert result.input is inputs[result.index]
        if result.index in (3, 17, 31):
            assert not result.ok
            assert isinstance(result.error, UnprocessableEntityError)
            assert result.prediction is None
        else:
            assert result.ok
            assert result.error is None
            assert result.output == f"ITEM {result.index}"
            assert result.prediction is not None
            assert result.prediction.status == "succeeded"
    assert [p.completed for p in progress] == list(range(1, 41))
    final = progress[-1]
    assert (final.total, final.started, final.completed) == (40, 40, 40)
    assert (final.succeeded, final.failed) == (37, 3)
    assert all(p.succeeded + p.failed == p.completed for p in progress)


async def test_run_many_model_failures_carry_their_prediction(client: AsyncReplicate) -> None:
    inputs = ({"error": f"bad {i}"} for i in range(5))  # a generator: total unknown
    seen: list[Progress] = []
    results = [
        r
        async for r in client.run_many(
            "fake/fail", inputs, concurrency=2, on_progress=lambda p: seen.append(snapshot(p))
        )
    ]
    assert len(results) == 5
    for result in results:
        assert isinstance(result.error, ModelError)
        assert result.prediction is not None
        assert result.prediction.error == f"bad {result.index}"
    assert seen[-1].total is None
    assert seen[-1].failed == 5


async def test_run_many_concurrency_bounds_predictions_in_flight(
    replicate_fake: FakeReplicate,
) -> None:
    """With ``concurrency=4``, never more than 4 creates are out at once (each is held by
    ``Prefer: wait`` until its prediction ends, so a create in flight is a run in flight),
    counted on the wire by the client's own request hooks."""
    replicate_fake.set_model_behaviour("fake/echo", duration=0.05)
    in_flight = 0
    peak = 0

    def on_request(event: RequestEvent) -> None:
        nonlocal in_flight, peak
        if event.kind == "create":
            in_flight += 1
            peak = max(peak, in_flight)

    def on_response(event: ResponseEvent) -> None:
        nonlocal in_flight
        if event.method == "POST" and event.url.endswith("/predictions"):
            in_flight -= 1

    hooks = Hooks(on_request=on_request, on_response=on_response)
    async with replicate_fake.client(poll=FAST_POLL, hooks=hooks) as client:
        results = [r async for r in client.run_many("fake/echo", [{}] * 30, concurrency=4)]
    assert len(results) == 30
    assert all(r.ok for r in results)
    assert peak == 4
    assert in_flight == 0


@pytest.mark.parametrize("closing", ["aclosing", "plain break"])
async def test_breaking_out_of_run_many_cancels_in_flight_on_the_server(
    replicate_fake: FakeReplicate, client: AsyncReplicate, closing: str
) -> None:
    """The first result is an immediate 422; at that moment the other runs are in their
    ``Prefer: wait=1`` hold or polling. Leaving the loop cancels them on the server."""
    replicate_fake.set_model_behaviour("fake/upper", duration=30)
    inputs = [{"bad": 1}] + [{"text": str(i)} for i in range(5)]
    runs = client.run_many("fake/upper", inputs, concurrency=4, wait=1)
    if closing == "aclosing":
        async with contextlib.aclosing(runs) as results:
            async for result in results:
                assert isinstance(result.error, UnprocessableEntityError)
                break
    else:
        async for result in runs:
            assert isinstance(result.error, UnprocessableEntityError)
            break
        del runs  # the loop finalizes the abandoned generator: cancellation follows

    # Runs left inside their hold are canceled in the background once their id is known.
    assert await client.inflight.drain()
    created = await client.predictions.list(created_after="2026-01-01T00:00:00Z").collect()
    if closing == "plain break":

        async def all_done() -> bool:
            found = await client.predictions.list(created_after="2026-01-01T00:00:00Z").collect()
            return all(p.status == "canceled" for p in found)

        await eventually(all_done, timeout=5)
        created = await client.predictions.list(created_after="2026-01-01T00:00:00Z").collect()
    # The 3 other workers' runs, and maybe the one the first worker had just started.
    assert len(created) in (3, 4)
    assert len(created) == replicate_fake.count("POST", "/v1/models/fake/upper/predictions") - 1
    assert {p.status for p in created} == {"canceled"}
    for prediction in created:
        assert replicate_fake.count("POST", f"/v1/predictions/{prediction.id}/cancel") == 1


# -- cooperative throttling ---------------------------------------------------------------


@attrs.define
class ThrottleRun:
    posts: int = 0
    throttled: int = 0
    first_window: int = 0
    failures: int = 0
    elapsed: float = 0.0


class _NoLimiter:
    """A rate limiter that never waits (each retry still sleeps its own Retry-After)."""

    async def acquire(self, kind: str) -> None:
        """Go at once."""

    async def on_rate_limited(self, kind: str, retry_after: float | None) -> None:
        """Ignore the 429."""

    async def aclose(self) -> None:
        """Nothing to close."""


async def _throttled_creates(hold: bool, n: int, spacing: float) -> ThrottleRun:
    """``n`` runs arriving ``spacing`` s apart while the create budget (600/min, refilling
    10/s) is used up: count the 429s the server answers."""
    async with FakeReplicate(rate_limits_enabled=True, create_limit_per_minute=600) as fake:
        # Empty the bucket first (its burst is a full minute's worth; the extra 100 are
        # answered 429 and not retried), so the runs below start with no budget left.
        async with fake.client(max_retries=0) as drain:
            await asyncio.gather(
                *(drain.predictions.create(version="fake/echo", input={}) for _ in range(700)),
                return_exceptions=True,
            )
        fake.clear_requests()
        policy = RetryPolicy(max_retries=8, total=30)
        limiter = None if hold else _NoLimiter()
        async with fake.client(retry=policy, poll=FAST_POLL, limiter=limiter) as client:

            async def one(i: int) -> Any:
                await asyncio.sleep(i * spacing)
                return await client.run("fake/echo", input={"i": i})

            started = time.perf_counter()
            outputs = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
            elapsed = time.perf_counter() - started
        posts = fake.requests_matching("POST", "/v1/models/fake/echo/predictions")
        window = [r for r in posts if r.time < posts[0].time + 0.9]
        return ThrottleRun(
            posts=len(posts),
            throttled=len(posts) - sum(not isinstance(o, BaseException) for o in outputs),
            first_window=len(window),
            failures=sum(isinstance(o, RateLimitError) for o in outputs),
            elapsed=elapsed,
        )


async def test_cooperative_throttling_holds_new_creates_after_a_429() -> None:
    """Runs arriving over 0.6 s into an empty create budget. Without the client's throttle
    each arrival is answered 429 on its own; with it, the first 429 paces every later
    create at the bucket's refill rate (10/s), so the first second sees one 429, not ~30."""
    n, spacing = 30, 0.02
    with_hold, without_hold = await asyncio.gather(
        _throttled_creates(True, n, spacing), _throttled_creates(False, n, spacing)
    )
    print(f"\nFIGURE 429s for {n} creates into an empty budget: with hold {with_hold}")
    print(f"FIGURE 429s for {n} creates into an empty budget: without hold {without_hold}")
    assert with_hold.failures == without_hold.failures == 0  # everyone got through
    # The first 0.9 s: with the throttle, about what the bucket refills (10/s) plus the
    # first 429 reach the server; without it, every arrival does.
    assert with_hold.first_window <= 12, with_hold
    # Without it, the arrivals themselves reach the server in that window: all n on a quiet
    # machine (a loaded one may push the last arrival or two past it), always far more.
    assert without_hold.first_window >= max(2 * with_hold.first_window, n - 5), without_hold
    # Overall the throttle saves the arrivals' own 429s, and paced resends do not trip
    # the limit again: a fraction of the 429s remain.
    assert with_hold.throttled * 3 <= without_hold.throttled, (with_hold, without_hold)
