"""Prediction and training lifecycles: statuses, waits, cancels, deadlines, outputs."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from replicate_async.testing import FakeReplicate, ManualClock
from replicate_async.testing._util import parse_ts

from .conftest import Api, data

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
ECHO = "fake/echo"


def version_of(fake: FakeReplicate, model: str) -> str:
    return fake.latest_version_id(model)


async def test_async_create_then_poll_until_succeeded(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    created = await api.create(version_of(replicate_fake, "fake/upper"), {"text": "hello"})
    assert created["status"] == "starting"
    assert created["output"] is None
    assert created["urls"]["get"] == f"{replicate_fake.base_url}/predictions/{created['id']}"
    assert created["urls"]["stream"] == f"{replicate_fake.base_url}/streams/{created['id']}"
    assert created["urls"]["web"] == f"https://replicate.com/p/{created['id']}"
    assert TS.match(created["created_at"])
    assert len(created["id"]) == 26
    assert created["id"].isalnum()
    assert created["id"].islower()

    final = await replicate_fake.wait_for_prediction(created["id"])
    resp = await api.get(created["urls"]["get"])
    assert resp.status == 200
    got = resp.json()
    assert got == final
    assert got["status"] == "succeeded"
    assert got["output"] == "HELLO"
    assert got["logs"] == "Running upper model\n"
    assert set(got["metrics"]) >= {"predict_time", "total_time"}
    for key in ("created_at", "started_at", "completed_at"):
        assert TS.match(got[key]), got[key]
    assert (
        parse_ts(got["created_at"]) <= parse_ts(got["started_at"]) <= parse_ts(got["completed_at"])
    )
    assert got["source"] == "api"
    assert got["data_removed"] is False
    assert got["error"] is None


async def test_version_reference_forms(api: Api, replicate_fake: FakeReplicate) -> None:
    vid = version_of(replicate_fake, ECHO)
    for ref in (vid, f"{ECHO}:{vid}", ECHO):
        created = await api.create(ref, {"text": "x"})
        assert created["version"] == vid
        assert created["model"] == ECHO
    # Bare owner/name works only for official models.
    resp = await api.post(
        "/v1/predictions", json={"version": "replicate/hello-world", "input": {"text": "a"}}
    )
    assert resp.status == 422
    assert resp.json() == data("error-422-invalid-version.json")
    for bad in ("0" * 64, f"fake/upper:{vid}", "nope/nope:abc"):
        resp = await api.post("/v1/predictions", json={"version": bad, "input": {}})
        assert resp.status == 422, bad
        assert resp.content_type == "application/problem+json"


async def test_official_models_report_special_versions(api: Api) -> None:
    resp = await api.post(
        "/v1/models/meta/meta-llama-3-8b-instruct/predictions",
        json={"input": {"prompt": "write a haiku about llamas"}},
    )
    assert resp.status == 201
    body = resp.json()
    assert body["model"] == "meta/meta-llama-3-8b-instruct"
    assert body["version"] == "dp-a557b7387b4940df25b23f779dc534c4"
    resp = await api.post(
        "/v1/predictions",
        json={"version": "black-forest-labs/flux-schnell", "input": {"prompt": "a cat"}},
    )
    assert resp.status == 201
    assert resp.json()["version"] == "hidden"
    # Not official: no models.predictions.create.
    resp = await api.post("/v1/models/replicate/hello-world/predictions", json={"input": {}})
    assert resp.status == 404


async def test_prefer_wait_fast_model_returns_succeeded(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    resp = await api.post(
        "/v1/predictions",
        json={"version": "fake/tokens", "input": {"prompt": "one two three"}},
        headers={"Prefer": "wait"},
    )
    assert resp.status == 201
    assert resp.headers["Preference-Applied"] == "wait"
    body = resp.json()
    assert body["status"] == "succeeded"
    assert body["output"] == ["one", " two", " three"]
    assert body["metrics"]["output_token_count"] == 3


async def test_prefer_wait_slow_model_returns_processing() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as session:
        api = Api(fake, session)
        request = asyncio.ensure_future(
            api.post(
                "/v1/predictions",
                json={"version": "fake/slow", "input": {"text": "zzz"}},
                headers={"Prefer": "wait=1"},
            )
        )
        await clock.wait_for_sleepers(2)  # the run's first step + the 1 s hold
        clock.advance(1)
        resp = await request
        assert resp.status == 201
        assert resp.headers["Preference-Applied"] == "wait=1"
        body = resp.json()
        assert body["status"] == "processing"
        assert "completed_at" not in body
        await clock.advance_async(10)
        final = await fake.wait_for_prediction(body["id"])
        assert final["status"] == "succeeded"
        assert final["output"] == "zzz"
        assert final["metrics"]["predict_time"] == pytest.approx(5.0)


async def test_prefer_wait_incomplete_status_202() -> None:
    clock = ManualClock()
    options = {"clock": clock, "prefer_wait_incomplete_status": 202}
    async with FakeReplicate(**options) as fake, aiohttp.ClientSession() as session:  # type: ignore[arg-type]
        request = asyncio.ensure_future(
            Api(fake, session).post(
                "/v1/predictions",
                json={"version": "fake/slow", "input": {}},
                headers={"Prefer": "wait=2"},
            )
        )
        await clock.wait_for_sleepers(2)
        clock.advance(2)
        assert (await request).status == 202


async def test_cancel_mid_run() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as session:
        api = Api(fake, session)
        fake.set_model_behaviour("fake/slow", duration=100)
        created = await api.create("fake/slow", {})
        await clock.wait_for_sleepers(1)
        clock.advance(3)
        resp = await api.post(created["urls"]["cancel"])
        assert resp.status == 200
        body = resp.json()
        assert body["status"] == "canceled"
        assert body["metrics"]["predict_time"] == pytest.approx(3.0)
        assert "completed_at" in body
        assert "started_at" in body
        # Cancelling again is harmless and nothing changes afterwards.
        again = await api.post(created["urls"]["cancel"])
        assert again.status == 200
        assert again.json() == body
        clock.advance(200)
        await fake.wait_idle()
        assert fake.prediction(created["id"]) == body


async def test_cancel_after_deadline_cancels_running_prediction() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as session:
        fake.set_model_behaviour("fake/slow", duration=100)
        created = await Api(fake, session).create("fake/slow", {}, headers={"Cancel-After": "5s"})
        assert parse_ts(created["deadline"]) - parse_ts(created["created_at"]) == 5 * 10**9
        await clock.wait_for_sleepers(2)  # first step + deadline
        clock.advance(5)
        final = await fake.wait_for_prediction(created["id"])
        assert final["status"] == "canceled"


async def test_cancel_after_deadline_aborts_queued_prediction() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as session:
        fake.set_model_behaviour("fake/echo", queue_time=60)
        created = await Api(fake, session).create(ECHO, {}, headers={"Cancel-After": "5"})
        await clock.wait_for_sleepers(2)
        clock.advance(5)
        final = await fake.wait_for_prediction(created["id"])
        assert final["status"] == "aborted"
        assert "started_at" not in final
        assert "predict_time" not in final["metrics"]


async def test_finished_prediction_drops_its_deadline_timer() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as session:
        created = await Api(fake, session).create(ECHO, {}, headers={"Cancel-After": "5m"})
        final = await fake.wait_for_prediction(created["id"])
        assert final["status"] == "succeeded"
        await clock.advance_async(0)
        assert clock.pending_sleepers == 0


@pytest.mark.parametrize(
    ("header", "seconds"), [("30", 30), ("30s", 30), ("5m", 300), ("1h30m45s", 5445)]
)
async def test_cancel_after_formats(api: Api, header: str, seconds: int) -> None:
    created = await api.create(ECHO, {}, headers={"Cancel-After": header})
    delta = parse_ts(created["deadline"]) - parse_ts(created["created_at"])
    assert delta == seconds * 10**9


@pytest.mark.parametrize("header", ["4", "4s", "abc", "", "1d", "m"])
async def test_cancel_after_rejects_bad_values(api: Api, header: str) -> None:
    resp = await api.post(
        "/v1/predictions",
        json={"version": ECHO, "input": {}},
        headers={"Cancel-After": header},
    )
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"


async def test_failed_model(api: Api, replicate_fake: FakeReplicate) -> None:
    created = await api.create("fake/fail", {"error": "CUDA out of memory"})
    final = await replicate_fake.wait_for_prediction(created["id"])
    assert final["status"] == "failed"
    assert final["error"] == "CUDA out of memory"
    assert "Traceback" in final["logs"]
    assert final["output"] is None


async def test_behaviour_outcome_fail_for_any_model(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    replicate_fake.set_model_behaviour(ECHO, outcome="fail", error="boom")
    created = await api.create(ECHO, {"text": "x"})
    final = await replicate_fake.wait_for_prediction(created["id"])
    assert (final["status"], final["error"]) == ("failed", "boom")
    replicate_fake.reset_model_behaviour(ECHO)
    created = await api.create(ECHO, {"text": "x"})
    assert (await replicate_fake.wait_for_prediction(created["id"]))["status"] == "succeeded"


async def test_image_outputs_are_served_by_the_fake(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    created = await api.create("fake/image", {"prompt": "a cat", "num_outputs": 2})
    assert created["urls"]["stream"].startswith(f"{replicate_fake.base_url}/files/fstream-")
    final = await replicate_fake.wait_for_prediction(created["id"])
    assert len(final["output"]) == 2
    url = final["output"][0]
    assert url == f"{replicate_fake.origin}/delivery/{created['id']}/out-0.png"
    resp = await api.get(url, auth=False)
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert resp.body.startswith(b"\x89PNG\r\n\x1a\n")
    assert final["metrics"]["image_count"] == 2
    # Sync mode inlines data: URLs, like the real API.
    resp = await api.post(
        "/v1/predictions",
        json={"version": "fake/image", "input": {"prompt": "a dog"}},
        headers={"Prefer": "wait=5"},
    )
    assert resp.json()["output"][0].startswith("data:image/png;base64,")


async def test_deployment_prediction(api: Api, replicate_fake: FakeReplicate) -> None:
    resp = await api.post(
        "/v1/deployments/alice/echo-deployment/predictions", json={"input": {"text": "hi"}}
    )
    assert resp.status == 201
    body = resp.json()
    assert body["deployment"] == "alice/echo-deployment"
    assert body["model"] == ECHO
    final = await replicate_fake.wait_for_prediction(body["id"])
    assert final["output"] == {"text": "hi"}
    resp = await api.post("/v1/deployments/alice/nope/predictions", json={"input": {}})
    assert resp.status == 404


async def test_zero_duration_still_passes_through_every_status(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    created = await api.create(ECHO, {"text": "a"})
    seen = [created["status"]]
    seen.append(
        (await replicate_fake.wait_for_prediction(created["id"], {"processing", "succeeded"}))[
            "status"
        ]
    )
    seen.append((await replicate_fake.wait_for_prediction(created["id"]))["status"])
    assert seen[0] == "starting"
    assert seen[-1] == "succeeded"


async def test_training_success_creates_version(api: Api, replicate_fake: FakeReplicate) -> None:
    base = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf"
    resp = await api.post(
        f"/v1/models/stability-ai/sdxl/versions/{base}/trainings",
        json={"destination": "alice/my-model", "input": {"input_images": "https://x/y.zip"}},
    )
    assert resp.status == 201
    training = resp.json()
    assert training["status"] == "starting"
    assert training["urls"]["get"] == f"{replicate_fake.base_url}/trainings/{training['id']}"
    final = await replicate_fake.wait_for_prediction(training["id"])
    assert final["status"] == "succeeded"
    destination, _, new_version = final["output"]["version"].partition(":")
    assert destination == "alice/my-model"
    assert len(new_version) == 64
    got = (await api.get(f"/v1/trainings/{training['id']}")).json()
    assert got["output"] == final["output"]
    versions = (await api.get("/v1/models/alice/my-model/versions")).json()["results"]
    assert versions[0]["id"] == new_version
    model = (await api.get("/v1/models/alice/my-model")).json()
    assert model["latest_version"]["id"] == new_version
    listed = (await api.get("/v1/trainings")).json()["results"]
    assert listed[0]["id"] == training["id"]


async def test_training_bad_destination(api: Api) -> None:
    base = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf"
    for destination in ("alice/does-not-exist", "fake/echo"):
        resp = await api.post(
            f"/v1/models/stability-ai/sdxl/versions/{base}/trainings",
            json={"destination": destination, "input": {}},
        )
        assert resp.status == 404
        assert resp.json() == data("error-404-training-destination.json")


async def test_training_cancel() -> None:
    clock = ManualClock()
    async with (
        FakeReplicate(clock=clock, training_duration=50) as fake,
        aiohttp.ClientSession() as s,
    ):
        api = Api(fake, s)
        base = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf"
        resp = await api.post(
            f"/v1/models/stability-ai/sdxl/versions/{base}/trainings",
            json={"destination": "alice/my-model", "input": {}},
        )
        training = resp.json()
        await clock.wait_for_sleepers(1)
        resp = await api.post(f"/v1/trainings/{training['id']}/cancel")
        assert resp.status == 200
        assert resp.json()["status"] == "canceled"
        assert "output" not in resp.json()


async def test_many_concurrent_predictions(api: Api, replicate_fake: FakeReplicate) -> None:
    vid = version_of(replicate_fake, ECHO)
    results = await asyncio.gather(*(api.create(vid, {"text": str(i)}) for i in range(300)))
    assert len({r["id"] for r in results}) == 300
    await replicate_fake.wait_idle()
    assert replicate_fake.count("POST", "/v1/predictions") == 300
    assert all(replicate_fake.prediction(r["id"])["status"] == "succeeded" for r in results)  # type: ignore[index]
