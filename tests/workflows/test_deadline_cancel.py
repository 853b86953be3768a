"""One deadline per run, and cancellation that cancels: the server must end up canceled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from replicate_async import AsyncReplicate, Prediction, PredictionTimeoutError
from replicate_async.testing import FakeReplicate, ManualClock
from tests.helpers import eventually

from ._virtual import newest, reach, status, virtual_client, virtual_fake
from .conftest import newest_prediction_id

SLOW_CREATE = "/v1/models/fake/slow/predictions"


def cancels(fake: FakeReplicate, pid: str, kind: str = "predictions") -> int:
    return fake.count("POST", f"/v1/{kind}/{pid}/cancel")


async def status_of(fake: FakeReplicate, pid: str) -> str:
    found = fake.prediction(pid)
    assert found is not None
    return str(found["status"])


async def wait_created(fake: FakeReplicate, client: AsyncReplicate, path: str) -> str:
    """Wait until the fake has created a prediction for a create sent to ``path``."""
    await eventually(lambda: fake.count("POST", path) >= 1)
    found: list[str] = []

    async def created() -> bool:
        pid = await newest_prediction_id(client)
        if pid is not None:
            found.append(pid)
        return bool(found)

    await eventually(created)
    return found[0]


# -- one deadline ---------------------------------------------------------------------------


async def _expire(task: asyncio.Future[object], clock: ManualClock, limit: float) -> None:
    """Move virtual time in 0.05 s steps until ``task`` ends, then await it."""
    for _ in range(int(limit / 0.05) + 1):
        if task.done():
            break
        clock.advance(0.05)
        await asyncio.sleep(0.005)
    await asyncio.wait_for(task, 10)


async def test_timeout_during_held_create_raises_on_time_and_cancels_on_server() -> None:
    """timeout=0.5 on a slow model: the 1 s hold (the API's shortest) is still in flight at
    the deadline. The error comes at the deadline (virtual time); the prediction is canceled
    on the server as soon as the create answers, and ``Cancel-After`` bounds it meanwhile."""
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        task = asyncio.ensure_future(client.run("fake/slow", input={}, timeout=0.5))
        pid = await reach(fake, clock, "hold")
        start = clock.monotonic()
        clock.advance(0.5)
        with pytest.raises(PredictionTimeoutError) as info:
            await asyncio.wait_for(task, 10)
        assert clock.monotonic() - start == 0.5
        assert isinstance(info.value, TimeoutError)
        assert "canceled when it does" in str(info.value)
        create = fake.requests_matching("POST", SLOW_CREATE)[0]
        assert create.headers["prefer"] == "wait=1"
        assert create.headers["cancel-after"] == "5s"
        await clock.advance_async(1)  # the hold answers: the background cancel goes out
        assert await client.inflight.drain()
        assert status(fake, pid) == "canceled"
        assert cancels(fake, pid) == 1


async def test_timeout_while_polling_cancels_before_raising() -> None:
    """timeout=1.6: the hold is 1 s (ending before the deadline), then polling; at the
    deadline the prediction is canceled on the server before the error is raised."""
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        start = clock.monotonic()
        task = asyncio.ensure_future(client.run("fake/slow", input={}, timeout=1.6))
        await reach(fake, clock, "hold")
        with pytest.raises(PredictionTimeoutError) as info:
            await _expire(task, clock, 5)
        assert 1.6 <= clock.monotonic() - start < 1.7
        prediction = info.value.prediction
        assert isinstance(prediction, Prediction)
        assert prediction.status == "canceled"
        assert status(fake, prediction.id) == "canceled"
        assert cancels(fake, prediction.id) == 1
        create = fake.requests_matching("POST", SLOW_CREATE)[0]
        assert create.headers["prefer"] == "wait=1"
        assert create.headers["cancel-after"] == "5s"
        assert fake.count("GET", "/v1/predictions/*") >= 1  # it did poll


async def test_create_that_hangs_still_times_out_within_the_deadline() -> None:
    """The create itself hangs (a slow gateway): the deadline still holds, and the
    prediction it eventually creates is canceled when its answer lands."""
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        fake.faults.add(SLOW_CREATE, method="POST", delay=0.3)
        task = asyncio.ensure_future(client.run("fake/slow", input={}, timeout=0.3, wait=False))
        await eventually(lambda: fake.count("POST", SLOW_CREATE) == 1)
        clock.advance(0.3)
        with pytest.raises(PredictionTimeoutError) as info:
            await asyncio.wait_for(task, 10)
        assert info.value.prediction is None
        await eventually(lambda: newest(fake) is not None)  # the late answer lands
        pid = newest(fake)
        assert pid is not None
        assert await client.inflight.drain()
        await eventually(lambda: status(fake, pid) == "canceled")
        assert cancels(fake, pid) == 1


async def test_predictions_wait_timeout_cancels_unless_told_not_to(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    first = await client.predictions.create(version="fake/slow", input={})
    with pytest.raises(PredictionTimeoutError) as info:
        await client.predictions.wait(first, timeout=0.2)
    assert info.value.prediction is not None
    assert info.value.prediction.status == "canceled"
    assert await status_of(replicate_fake, first.id) == "canceled"

    second = await client.predictions.create(version="fake/slow", input={})
    with pytest.raises(PredictionTimeoutError) as info:
        await client.predictions.wait(second.id, timeout=0.2, cancel_on_abandon=False)
    assert "canceled" not in str(info.value)
    assert await status_of(replicate_fake, second.id) == "processing"
    assert cancels(replicate_fake, second.id) == 0

    replicate_fake.set_model_behaviour("fake/echo", duration=0.1)
    third = await client.predictions.create(version="fake/echo", input={"text": "t"})
    done = await client.predictions.wait(third.id, timeout=2)
    assert done.status == "succeeded"
    assert done.output == {"text": "t"}


async def test_trainings_wait_succeeds_or_times_out_and_cancels(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    version = replicate_fake.latest_version_id("fake/echo")
    replicate_fake.set_training_behaviour(duration=0.2)
    training = await client.trainings.create(
        "fake/echo", version, destination="alice/my-model", input={"steps": 1}
    )
    done = await client.trainings.wait(training, timeout=3)
    assert done.status == "succeeded"
    assert done.output is not None
    assert done.output["version"].startswith("alice/my-model:")

    replicate_fake.set_training_behaviour(duration=30)
    slow = await client.trainings.create(
        f"fake/echo:{version}", destination="alice/my-model", input={}
    )
    with pytest.raises(PredictionTimeoutError, match="training") as info:
        await client.trainings.wait(slow.id, timeout=0.2)
    assert info.value.prediction is not None
    assert info.value.prediction.status == "canceled"
    assert await status_of(replicate_fake, slow.id) == "canceled"
    assert cancels(replicate_fake, slow.id, "trainings") == 1


# -- cancellation that cancels --------------------------------------------------------------


async def _cancel_and_check(task: asyncio.Future[object], client: AsyncReplicate) -> None:
    """Cancel ``task``; assert CancelledError comes out; let background cancels land."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert await client.inflight.drain()


async def test_cancel_during_create_cancels_the_prediction_it_made(
    replicate_fake: FakeReplicate, client: AsyncReplicate, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled mid-request: the server creates the prediction anyway (the request was
    sent): the caller gets control back at once, and what the answer names is canceled in
    the background (``client.inflight.drain()`` / ``aclose()`` wait for it)."""
    replicate_fake.faults.add(SLOW_CREATE, method="POST", delay=0.3)
    task = asyncio.ensure_future(client.run("fake/slow", input={}, wait=False))
    await eventually(lambda: replicate_fake.count("POST", SLOW_CREATE) == 1)
    assert await newest_prediction_id(client) is None  # still inside the request
    await _cancel_and_check(task, client)

    pid = await newest_prediction_id(client)
    assert pid is not None
    assert await status_of(replicate_fake, pid) == "canceled"
    assert cancels(replicate_fake, pid) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_cancel_during_the_hold_cancels_once_the_hold_answers(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Cancelled while ``Prefer: wait=1`` holds the create: the prediction's id only comes
    with the answer: it is canceled in the background once the hold answers."""
    task = asyncio.ensure_future(client.run("fake/slow", input={}, wait=1))
    pid = await wait_created(replicate_fake, client, SLOW_CREATE)
    await _cancel_and_check(task, client)
    assert await status_of(replicate_fake, pid) == "canceled"
    assert cancels(replicate_fake, pid) == 1


async def test_cancel_during_polling_cancels_at_once(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    task = asyncio.ensure_future(client.run("fake/slow", input={}, wait=False))
    await eventually(lambda: replicate_fake.count("GET", "/v1/predictions/*") >= 2)
    await _cancel_and_check(task, client)
    pid = replicate_fake.requests_matching("GET", "/v1/predictions/*")[0].path.rsplit("/")[-1]
    assert await status_of(replicate_fake, pid) == "canceled"
    assert cancels(replicate_fake, pid) == 1


async def test_cancel_during_predictions_wait_cancels(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    prediction = await client.predictions.create(version="fake/slow", input={})
    task = asyncio.ensure_future(client.predictions.wait(prediction))
    await eventually(lambda: replicate_fake.count("GET", f"/v1/predictions/{prediction.id}") >= 1)
    await _cancel_and_check(task, client)
    assert await status_of(replicate_fake, prediction.id) == "canceled"


async def test_cancel_from_an_outer_timeout_scope_cancels(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """The caller's own ``asyncio.timeout`` is task cancellation too."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await client.run("fake/slow", input={}, wait=False)
    assert await client.inflight.drain()
    pid = await newest_prediction_id(client)
    assert pid is not None
    assert await status_of(replicate_fake, pid) == "canceled"
