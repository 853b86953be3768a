"""Webhook-driven completion (``WebhookWaiter``): fan-outs that wait without polling."""

from __future__ import annotations

import asyncio
import time

import pytest

from replicate_async import AsyncReplicate, ModelError, PredictionTimeoutError
from replicate_async._waiter import WebhookWaiter
from replicate_async.testing import FakeReplicate

from .conftest import newest_prediction_id


async def test_run_completes_by_webhook_without_polling(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    replicate_fake.set_model_behaviour("fake/upper", duration=0.2)
    async with WebhookWaiter.from_client(client) as waiter:
        assert await waiter.run(client, "fake/upper", input={"text": "pushed"}) == "PUSHED"
    (create,) = replicate_fake.requests_matching("POST", "/v1/models/fake/upper/predictions")
    assert "prefer" not in create.headers  # no hold: the webhook is the wait
    assert create.json()["webhook"] == waiter.url
    assert create.json()["webhook_events_filter"] == ["completed"]
    assert replicate_fake.count("GET", "/v1/predictions/*") == 0
    assert waiter.stats == {"deliveries": 1, "safety_polls": 0}


async def test_fan_out_waits_on_webhooks_alone(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """500 runs of 0.3 s each: one request per prediction (the create), zero polls."""
    replicate_fake.set_model_behaviour("fake/echo", duration=0.3)
    count = 500
    async with WebhookWaiter.from_client(client) as waiter:
        started = time.perf_counter()
        outputs = await asyncio.gather(
            *(waiter.run(client, "fake/echo", input={"text": str(i)}) for i in range(count))
        )
        elapsed = time.perf_counter() - started
    assert outputs == [{"text": str(i)} for i in range(count)]
    creates = replicate_fake.count("POST", "/v1/models/fake/echo/predictions")
    assert creates == count
    assert replicate_fake.count("GET", "/v1/predictions/*") == 0
    assert client.stats["requests"] == count + 1  # + the secret, fetched once
    assert waiter.stats["deliveries"] == count
    print(f"\nFIGURE webhook fan-out: {count} runs of 0.3 s in {elapsed:.2f}s, 1 request each")


async def test_run_many_by_webhook_reports_failures(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    async with WebhookWaiter.from_client(client) as waiter:
        results = [
            r
            async for r in waiter.run_many(
                client, "fake/fail", [{"error": f"e{i}"} for i in range(6)], concurrency=3
            )
        ]
    assert sorted(r.index for r in results) == list(range(6))
    assert all(isinstance(r.error, ModelError) for r in results)
    assert replicate_fake.count("GET", "/v1/predictions/*") == 0


async def test_deadline_cancels_on_the_server(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    async with WebhookWaiter.from_client(client) as waiter:
        with pytest.raises(PredictionTimeoutError) as info:
            await waiter.run(client, "fake/slow", input={}, timeout=0.3)
    prediction = info.value.prediction
    assert prediction is not None
    assert prediction.status == "canceled"
    assert replicate_fake.count("POST", f"/v1/predictions/{prediction.id}/cancel") == 1
    create = replicate_fake.requests_matching("POST", "/v1/models/fake/slow/predictions")[0]
    assert create.headers["cancel-after"] == "5s"


async def test_task_cancellation_cancels_on_the_server(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    async with WebhookWaiter.from_client(client) as waiter:
        task = asyncio.ensure_future(waiter.run(client, "fake/slow", input={}))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    pid = await newest_prediction_id(client)
    assert pid is not None
    found = replicate_fake.prediction(pid)
    assert found is not None
    assert found["status"] == "canceled"


async def test_lost_delivery_is_caught_by_the_safety_poll(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """A receiver with the wrong secret rejects every delivery (400): the safety-net poll
    still finishes the run."""
    async with WebhookWaiter("whsec_" + "QUJD" * 8, safety_poll=0.2) as waiter:
        output = await waiter.run(client, "fake/upper", input={"text": "lost"})
    assert output == "LOST"
    await replicate_fake.drain_webhooks()
    assert {d.status for d in replicate_fake.webhook_deliveries} == {400}
    assert waiter.stats["safety_polls"] == 1
    assert replicate_fake.count("GET", "/v1/predictions/*") == 1


async def test_a_delivery_that_beats_the_waiter_is_kept(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    async with WebhookWaiter.from_client(client) as waiter:
        prediction = await client.predictions.create(
            version="fake/upper",
            input={"text": "early"},
            webhook=waiter.url,
            webhook_events_filter=["completed"],
        )
        await replicate_fake.drain_webhooks()
        done = await waiter.wait(prediction.id, timeout=1)
    assert done.status == "succeeded"
    assert done.output == "EARLY"
