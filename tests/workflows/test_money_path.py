"""No paid run lost at the edges (issue #24, the workflow half), over real sockets.

Each test is one way a created prediction used to keep running (and billing) with nobody
able to name it: a poll failing for good, ``break`` then ``aclose()``, a create queued for a
connection when its run was abandoned, a webhook completion refused or replayed, runs that
could not be named or bounded. The fake and the client share one virtual clock.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from replicate_async import (
    APIConnectionError,
    AsyncReplicate,
    InternalServerError,
    NotFoundError,
    Prediction,
    PredictionTimeoutError,
    ReplicateError,
    RetryPolicy,
    RunAbandonedError,
)
from replicate_async._waiter import MAX_DELIVERY_BYTES, WebhookWaiter
from replicate_async.testing import FakeReplicate
from replicate_async.webhooks import sign
from tests.helpers import eventually

from ._virtual import PROMPT, cancels, made, newest, status, tick, virtual_client, virtual_fake
from .conftest import FAST_POLL

CREATE = "/v1/models/fake/slow/predictions"


class Recorder:
    """A :class:`~replicate_async.RunObserver` writing down what it hears."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.settled: list[str] = []

    async def run_created(self, prediction: Prediction) -> None:
        self.created.append(prediction.id)

    async def run_settled(self, prediction_id: str) -> None:
        self.settled.append(prediction_id)


async def _canceled_once(fake: FakeReplicate, client: AsyncReplicate, pid: str) -> None:
    assert await client.inflight.drain()
    assert status(fake, pid) == "canceled"
    assert cancels(fake, pid) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 502}, InternalServerError),
        ({"html_error": True}, InternalServerError),
        ({"status": 404}, NotFoundError),
        ({"drop_connection": "before_body"}, APIConnectionError),
    ],
    ids=["502", "html-502", "404", "network-gone"],
)
async def test_a_poll_that_fails_for_good_names_and_cancels_the_run(
    fault: dict[str, Any], error: type[ReplicateError]
) -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        fake.faults.add("/v1/predictions/*", method="GET", times=10_000, **fault)
        ticking = asyncio.ensure_future(tick(clock))
        try:
            with pytest.raises(error) as info:
                await asyncio.wait_for(
                    client.run("fake/slow", input={}, wait=False, timeout=60), 10
                )
        finally:
            ticking.cancel()
        (created,) = made(fake)
        assert info.value.prediction_id == created.id
        assert info.value.prediction is not None
        await _canceled_once(fake, client, created.id)
        assert fake.count("POST", CREATE) == 1


async def test_break_then_close_cancels_the_stream_s_prediction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with virtual_fake() as (fake, clock):
        client = virtual_client(fake, clock)
        ticking = asyncio.ensure_future(tick(clock))
        try:
            async for event in client.stream("fake/tokens", input={"prompt": PROMPT}):
                if event.event == "output":
                    break
        finally:
            ticking.cancel()
        pid = newest(fake)
        assert pid is not None
        assert status(fake, pid) == "processing"
        with caplog.at_level(logging.WARNING, logger="replicate_async"):
            await asyncio.wait_for(client.aclose(), 10)
        assert status(fake, pid) == "canceled"  # before aclose() returned
        assert cancels(fake, pid) == 1
        for _ in range(20):  # the dropped stream's own finalization adds no second cancel
            await asyncio.sleep(0)
        assert cancels(fake, pid) == 1
        assert "failed" not in caplog.text


async def _occupy_the_held_budget(fake: FakeReplicate, client: AsyncReplicate) -> asyncio.Task[Any]:
    """A held create (``Prefer: wait``) takes the one held slot until its hold answers."""
    first = asyncio.ensure_future(client.run("fake/slow", input={}, wait=5, timeout=30))
    await eventually(lambda: fake.count("POST", CREATE) == 1)
    return first


async def test_a_queued_create_whose_deadline_passes_is_never_sent() -> None:
    async with virtual_fake() as (fake, clock), fake.client(clock=clock, max_connections=1) as c:
        first = await _occupy_the_held_budget(fake, c)
        queued = asyncio.ensure_future(c.run("fake/slow", input={}, timeout=2))
        for _ in range(20):
            await asyncio.sleep(0)
        await clock.advance_async(2)  # the queued run's deadline
        with pytest.raises(PredictionTimeoutError, match="never sent") as info:
            await asyncio.wait_for(queued, 10)
        assert info.value.prediction is None
        first.cancel()
        await clock.advance_async(10)  # the first hold answers: its slot is free again
        await asyncio.gather(first, return_exceptions=True)
        assert await c.inflight.drain()
        assert fake.count("POST", CREATE) == 1  # the abandoned create never went out


async def test_a_queued_create_whose_task_is_cancelled_is_never_sent() -> None:
    async with virtual_fake() as (fake, clock), fake.client(clock=clock, max_connections=1) as c:
        first = await _occupy_the_held_budget(fake, c)
        queued = asyncio.ensure_future(c.run("fake/slow", input={}))
        for _ in range(20):
            await asyncio.sleep(0)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(queued, 10)
        first.cancel()
        await clock.advance_async(10)
        await asyncio.gather(first, return_exceptions=True)
        assert await c.inflight.drain()
        assert fake.count("POST", CREATE) == 1


async def test_the_waiter_accepts_deliveries_far_over_one_mebibyte(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    secret = replicate_fake.webhook_secret
    body = json.dumps({"id": "big1", "status": "succeeded", "output": "x" * (3 << 20)}).encode()
    now = int(time.time())
    headers = {
        "webhook-id": "msg_big",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(body, secret, msg_id="msg_big", timestamp=now),
        "content-type": "application/json",
    }
    assert len(body) > 1 << 20
    assert MAX_DELIVERY_BYTES == 32 << 20
    async with WebhookWaiter(secret) as waiter, aiohttp.ClientSession() as http:
        waiting = asyncio.ensure_future(waiter.wait("big1", timeout=10))
        async with http.post(waiter.url, data=io.BytesIO(body), headers=headers) as resp:
            assert resp.status == 200
        delivered = await waiting
    assert delivered.output == "x" * (3 << 20)


async def test_a_replayed_delivery_is_not_processed_again_whatever_other_id_it_shows(
    replicate_fake: FakeReplicate,
) -> None:
    secret = replicate_fake.webhook_secret
    body = json.dumps({"id": "p1", "status": "succeeded", "output": "hi"}).encode()
    now = int(time.time())
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(body, secret, msg_id="msg_1", timestamp=now),
    }
    async with WebhookWaiter(secret, listen=False, public_url="https://x.test/h") as waiter:
        # A second spelling of the header comes first: the signature covers "msg_1" alone.
        assert await waiter.handle({"Webhook-Id": "fresh-1", **signed}, body) == (200, "ok")
        replay = {"Webhook-Id": "fresh-2", **signed}
        assert await waiter.handle(replay, body) == (200, "duplicate delivery")
        assert waiter.stats["deliveries"] == 1


async def test_waiter_run_and_streams_hand_over_the_prediction(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    seen: list[Prediction] = []

    async def remember(prediction: Prediction) -> None:
        seen.append(prediction)

    replicate_fake.set_model_behaviour("fake/upper", duration=0.05)
    async with WebhookWaiter.from_client(client) as waiter:
        out = await waiter.run(client, "fake/upper", input={"text": "a"}, on_created=remember)
    assert out == "A"
    async for _ in client.stream("fake/tokens", input={"prompt": "a b"}, on_created=seen.append):
        pass
    outputs = client.stream_output("fake/tokens", input={"prompt": "c"}, on_created=remember)
    assert [o async for o in outputs]
    assert len(seen) == 3
    for prediction in seen:
        assert replicate_fake.prediction(prediction.id) is not None
        assert prediction.status in ("starting", "processing")


async def test_a_stream_s_timeout_bounds_the_whole_run_and_names_it() -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        ticking = asyncio.ensure_future(tick(clock))
        events: list[str] = []

        async def consume() -> None:
            async for event in client.stream("fake/tokens", input={"prompt": PROMPT}, timeout=5):
                events.append(event.event)

        try:
            with pytest.raises(PredictionTimeoutError) as info:
                await asyncio.wait_for(consume(), 10)
        finally:
            ticking.cancel()
        (created,) = made(fake)
        assert info.value.prediction_id == created.id
        assert "done" not in events
        (create,) = fake.requests_matching("POST", "/v1/models/fake/tokens/predictions")
        assert create.headers["cancel-after"] == "5s"  # the server is told as well
        await _canceled_once(fake, client, created.id)


async def test_a_failing_on_created_cancels_the_run_and_names_it() -> None:
    def boom(prediction: Prediction) -> None:
        raise ValueError("no room for it")

    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        with pytest.raises(RunAbandonedError) as info:
            await client.run("fake/slow", input={}, wait=False, on_created=boom)
        (created,) = made(fake)
        assert info.value.prediction_id == created.id
        assert isinstance(info.value.__cause__, ValueError)
        await _canceled_once(fake, client, created.id)


async def test_observers_hear_every_workflow_s_runs_begin_and_end(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    class Broken:
        async def run_created(self, prediction: Prediction) -> None:
            raise RuntimeError("registry down")

        async def run_settled(self, prediction_id: str) -> None:
            raise RuntimeError("registry down")

    recorder = Recorder()
    client.inflight.observers.extend([Broken(), recorder])
    replicate_fake.set_model_behaviour("fake/upper", duration=0.05)
    assert await client.run("fake/upper", input={"text": "a"}) == "A"
    await client.predictions.run("fake/upper", input={"text": "b"})
    assert [e async for e in client.stream("fake/tokens", input={"prompt": "x"})]
    many = client.run_many("fake/upper", [{"text": "c"}, {"text": "d"}], concurrency=2)
    assert [r.ok async for r in many] == [True, True]
    assert await client.use("fake/upper")(text="e") == "E"
    async with WebhookWaiter.from_client(client) as waiter:
        assert await waiter.run(client, "fake/upper", input={"text": "f"}) == "F"
    with pytest.raises(PredictionTimeoutError) as info:
        await client.run("fake/slow", input={}, wait=False, timeout=0.2)
    assert await client.inflight.drain()
    abandoned = info.value.prediction_id
    assert abandoned is not None
    assert len(set(recorder.created)) == len(recorder.created) == 8
    assert sorted(recorder.settled) == sorted(recorder.created)
    assert recorder.settled[-1] == abandoned  # told only once its cancel had landed
    assert cancels(replicate_fake, abandoned) == 1


async def test_a_wait_that_fails_for_good_names_the_prediction_it_was_given(
    replicate_fake: FakeReplicate,
) -> None:
    quick = RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.02)
    async with replicate_fake.client(retry=quick, poll=FAST_POLL) as client:
        prediction = await client.predictions.create(version="fake/slow", input={})
        path = f"/v1/predictions/{prediction.id}"
        replicate_fake.faults.add(path, method="GET", status=500, times=99)
        with pytest.raises(InternalServerError) as info:
            await client.predictions.wait(prediction, timeout=30)
        assert info.value.prediction_id == prediction.id
        assert await client.inflight.drain()
        assert cancels(replicate_fake, prediction.id) == 1


async def test_a_stream_left_by_break_and_dropped_is_canceled_without_aclose() -> None:
    """The client stays open (a long-lived app): dropping the left stream is enough."""
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        ticking = asyncio.ensure_future(tick(clock))
        try:
            async for event in client.stream("fake/tokens", input={"prompt": PROMPT}):
                if event.event == "output":
                    break
            pid = newest(fake)
            assert pid is not None
            await eventually(lambda: status(fake, pid) == "canceled", timeout=10)
        finally:
            ticking.cancel()
        assert await client.inflight.drain()
        assert cancels(fake, pid) == 1
