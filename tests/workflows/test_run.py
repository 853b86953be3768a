"""``run()`` end to end against the fake: targets, sync mode, polling, terminal outcomes."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime
from typing import Any

import pytest

from replicate_async import (
    AsyncReplicate,
    ModelError,
    PollPolicy,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionError,
)
from replicate_async.testing import FakeReplicate, ManualClock
from tests.helpers import eventually

from .conftest import newest_prediction_id

DEPLOYMENT = "alice/echo-deployment"  # a seeded deployment of fake/echo


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("official", "/v1/models/fake/upper/predictions"),
        ("owner/name:version", "/v1/predictions"),
        ("version id", "/v1/predictions"),
        ("deployment", f"/v1/deployments/{DEPLOYMENT}/predictions"),
    ],
)
async def test_run_every_target_in_one_request(
    replicate_fake: FakeReplicate, client: AsyncReplicate, target: str, path: str
) -> None:
    """Each way to name a model creates on its endpoint with ``Prefer: wait`` and, for a
    fast model, needs exactly one request: the held create comes back finished."""
    version = replicate_fake.latest_version_id("fake/upper")
    kwargs: dict[str, Any] = {
        "official": {"ref": "fake/upper"},
        "owner/name:version": {"ref": f"fake/upper:{version}"},
        "version id": {"ref": version},
        "deployment": {"deployment": DEPLOYMENT},
    }[target]
    output = await client.run(**kwargs, input={"text": "hello"})

    assert output == ({"text": "hello"} if target == "deployment" else "HELLO")
    assert [(r.method, r.path) for r in replicate_fake.requests] == [("POST", path)]
    create = replicate_fake.requests[0]
    assert create.headers["prefer"] == "wait=5"  # run()'s default hold: the id is known early
    assert create.headers["authorization"] == f"Bearer {replicate_fake.token}"
    assert "cancel-after" not in create.headers  # no timeout: the server is not told one
    body = create.json()
    assert body["input"] == {"text": "hello"}
    if target == "owner/name:version":
        assert body["version"] == f"fake/upper:{version}"
    elif target == "version id":
        assert body["version"] == version
    else:
        assert "version" not in body
    assert client.stats["requests"] == 1


@pytest.mark.replicate_fake(slow_duration=1.5)
async def test_slow_model_comes_back_processing_then_is_polled_with_backoff(
    replicate_fake: FakeReplicate,
) -> None:
    """The hold (``wait=1``) ends with the prediction still processing; polls follow at
    growing intervals, few of them, and the end is noticed within one interval."""
    poll = PollPolicy(initial=0.05, factor=2.0, maximum=0.4, jitter=0.0)
    async with replicate_fake.client(poll=poll) as client:
        output = await client.run("fake/slow", input={"text": "late"}, wait=1)
        returned_at = time.time()
    assert output == "late"

    create, *polls = replicate_fake.requests
    assert create.headers["prefer"] == "wait=1"
    assert all(r.method == "GET" and r.path.startswith("/v1/predictions/") for r in polls)
    # 1.5 s of work, 1 s held: the rest needs 0.05 + 0.1 + 0.2 + 0.4 s of polling at most.
    assert 2 <= len(polls) <= 5, [r.time for r in polls]
    gaps = [b.time - a.time for a, b in itertools.pairwise(polls)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert all(gap <= poll.maximum + 0.2 for gap in gaps), gaps

    pid = polls[0].path.rsplit("/", 1)[-1]
    final = replicate_fake.prediction(pid)
    assert final is not None
    assert final["status"] == "succeeded"
    completed = datetime.fromisoformat(final["completed_at"]).timestamp()
    assert returned_at - completed < poll.maximum + 0.25  # noticed within one interval
    print(f"\nFIGURE requests per prediction, slow model (1.5 s, wait=1): {1 + len(polls)}")


async def test_failed_run_raises_model_error_with_error_and_logs(client: AsyncReplicate) -> None:
    with pytest.raises(ModelError) as info:
        await client.run("fake/fail", input={"error": "CUDA out of memory"})
    error = info.value
    assert "CUDA out of memory" in str(error)
    assert error.prediction is not None
    assert error.prediction.status == "failed"
    assert error.prediction.error == "CUDA out of memory"
    assert "Traceback (most recent call last):" in (error.prediction.logs or "")


async def test_prediction_canceled_elsewhere_raises_canceled_error(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Someone cancels the prediction while run() is held by ``Prefer: wait``."""
    task = asyncio.ensure_future(client.run("fake/slow", input={}))
    await eventually(lambda: replicate_fake.count("POST", "/v1/models/fake/slow/predictions") == 1)
    pid = None

    async def created() -> bool:
        nonlocal pid
        pid = await newest_prediction_id(client)
        return pid is not None

    await eventually(created)
    assert pid is not None
    canceled = await client.predictions.cancel(pid)
    assert canceled.status == "canceled"
    with pytest.raises(PredictionCanceledError) as info:
        await task
    assert info.value.prediction is not None
    assert info.value.prediction.id == pid


async def test_cancel_after_deadline_before_start_raises_aborted() -> None:
    """``Cancel-After`` passes while the prediction is still queued: ``aborted``."""
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake:
        fake.set_model_behaviour("fake/slow", duration=1.0, queue_time=60.0)
        async with fake.client() as client:
            task = asyncio.ensure_future(client.run("fake/slow", input={}, cancel_after=5))
            # The run's queue, its deadline and the create's hold all sleep on the clock.
            await clock.wait_for_sleepers(3)
            await clock.advance_async(5)
            with pytest.raises(PredictionAbortedError) as info:
                await asyncio.wait_for(task, 5)
        create = fake.requests_matching("POST", "/v1/models/fake/slow/predictions")[0]
        assert create.headers["cancel-after"] == "5s"
        assert info.value.prediction is not None
        assert info.value.prediction.status == "aborted"
        assert info.value.prediction.started_at is None


async def test_unknown_statuses_are_polled_through_and_terminal_ones_reported(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """An unknown status without ``completed_at`` is not terminal (keep polling); one with
    ``completed_at`` is, and run() reports it as a PredictionError, not a hang."""
    replicate_fake.set_model_behaviour("fake/echo", duration=5.0)  # still running meanwhile

    def body(status: str, completed: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": "unknownstatus0000000000000", "status": status}
        if completed:
            out["completed_at"] = "2025-01-01T00:00:01Z"
        return out

    replicate_fake.faults.add(
        "/v1/predictions/*", method="GET", body=body("queued", completed=False), times=2
    )
    replicate_fake.faults.add(
        "/v1/predictions/*", method="GET", body=body("interrupted", completed=True)
    )
    with pytest.raises(PredictionError) as info:
        await client.run("fake/echo", input={"text": "x"}, wait=False)
    assert type(info.value) is PredictionError
    assert "interrupted" in str(info.value)
    assert replicate_fake.count("GET", "/v1/predictions/*") == 3
    create = replicate_fake.requests_matching("POST", "/v1/models/fake/echo/predictions")[0]
    assert "prefer" not in create.headers  # wait=False: no hold, straight to polling
