"""422 bodies, header grammar, authentication and rate limiting."""

from __future__ import annotations

import aiohttp
import pytest

from replicate_async.testing import FakeReplicate, ManualClock

from .conftest import Api, data


async def test_input_validation_matches_real_body(api: Api) -> None:
    resp = await api.post(
        "/v1/predictions",
        json={"version": "fake/image", "input": {"num_inference_steps": 50}},
    )
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert resp.json() == data("error-422-input-validation.json")


async def test_request_body_validation_matches_real_body(api: Api) -> None:
    resp = await api.post("/v1/predictions", json={"model": "fake/echo", "input": {}})
    assert resp.status == 422
    assert resp.json() == data("error-422-request-body-validation.json")


async def test_other_invalid_fields(api: Api) -> None:
    resp = await api.post(
        "/v1/predictions",
        json={
            "version": "fake/image",
            "input": {"prompt": 3, "scheduler": "FAST", "width": 10, "seed": 1.5},
        },
    )
    body = resp.json()
    assert resp.status == 422
    fields = {(f["type"], f["field"]) for f in body["invalid_fields"]}
    assert fields == {
        ("invalid_type", "input.prompt"),
        ("enum", "input.scheduler"),
        ("number_gte", "input.width"),
        ("invalid_type", "input.seed"),
    }
    assert "- input.width: Must be greater than or equal to 64\n" in body["detail"]
    resp = await api.post("/v1/predictions", json={"version": "fake/upper", "input": {"txt": "a"}})
    kinds = [f["type"] for f in resp.json()["invalid_fields"]]
    assert kinds == ["required", "additional_property_not_allowed"]
    resp = await api.post(
        "/v1/predictions",
        json={"version": "fake/echo", "input": {}, "webhook_events_filter": ["finished"]},
    )
    assert resp.json()["invalid_fields"][0]["field"] == "webhook_events_filter.0"


async def test_non_json_body(api: Api) -> None:
    resp = await api.post(
        "/v1/predictions", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize(
    "prefer", ["wait=0", "wait=100", "wait=abc", "respond-async", "wait=05", "wait = 5"]
)
async def test_prefer_grammar(api: Api, prefer: str) -> None:
    resp = await api.post(
        "/v1/predictions", json={"version": "fake/echo", "input": {}}, headers={"Prefer": prefer}
    )
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"


async def test_prefer_wait_above_60_is_capped(api: Api) -> None:
    # The spec's pattern accepts 61-99 ("[1-9][0-9]"); the hold is capped at 60 s.
    resp = await api.post(
        "/v1/predictions", json={"version": "fake/echo", "input": {}}, headers={"Prefer": "wait=99"}
    )
    assert resp.status == 201
    assert resp.headers["Preference-Applied"] == "wait=99"


async def test_auth_required_and_both_schemes_accepted(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": replicate_fake.token}):
        resp = await api.get("/v1/account", auth=False, headers=headers)
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert resp.json() == data("error-401-unauthenticated.json")
    for scheme in ("Bearer", "Token", "bearer"):
        headers = {"Authorization": f"{scheme} {replicate_fake.token}"}
        resp = await api.get("/v1/account", auth=False, headers=headers)
        assert resp.status == 200, scheme
        assert resp.json()["username"] == "alice"


async def test_unauthenticated_endpoints(api: Api, replicate_fake: FakeReplicate) -> None:
    assert (await api.get("/v1/search?query=llama", auth=False)).status == 200
    created = await api.create("fake/echo", {"text": "a"})
    await replicate_fake.wait_for_prediction(created["id"])
    stream = await api.get(created["urls"]["stream"], auth=False)
    assert stream.status == 200
    assert stream.content_type == "text/event-stream"
    stream = await api.get(created["urls"]["stream"])  # auth is accepted too
    assert stream.status == 200


@pytest.mark.replicate_fake(require_auth=False)
async def test_auth_can_be_disabled(api: Api) -> None:
    assert (await api.get("/v1/account", auth=False)).status == 200


async def test_rate_limits() -> None:
    clock = ManualClock()
    options = {
        "clock": clock,
        "rate_limits_enabled": True,
        "create_limit_per_minute": 3,
        "other_limit_per_minute": 120,
    }
    async with FakeReplicate(**options) as fake, aiohttp.ClientSession() as s:  # type: ignore[arg-type]
        api = Api(fake, s)
        remaining = []
        for _ in range(3):
            resp = await api.post("/v1/predictions", json={"version": "fake/echo", "input": {}})
            assert resp.status == 201
            remaining.append(resp.headers["ratelimit-remaining"])
            assert resp.headers["ratelimit-reset"] == "1"
        assert remaining == ["2", "1", "0"]
        resp = await api.post("/v1/predictions", json={"version": "fake/echo", "input": {}})
        assert resp.status == 429
        assert resp.content_type == "application/problem+json"
        assert resp.headers["Retry-After"] == "20"
        assert resp.json() == {
            "detail": "Request was throttled. Expected available in 20 seconds.",
            "status": 429,
            "retry_after": 20,
        }
        # Other endpoints use their own bucket.
        other = await api.get("/v1/account")
        assert other.status == 200
        assert other.headers["ratelimit-remaining"] == "119"
        clock.advance(20)
        resp = await api.post("/v1/predictions", json={"version": "fake/echo", "input": {}})
        assert resp.status == 201
        # The other bucket (120 per minute, 2 per second) was refilled by the 20 s.
        for _ in range(120):
            assert (await api.get("/v1/hardware")).status == 200
        resp = await api.get("/v1/hardware")
        assert resp.status == 429
        assert resp.json()["retry_after"] == 1
        assert resp.json()["detail"] == "Request was throttled. Expected available in 1 second."
        fake.rate_limits_enabled = False
        assert (await api.get("/v1/hardware")).status == 200


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    resp = await api.get("/v1/nothing-here")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    resp = await api.request("PUT", "/v1/predictions")
    assert resp.status == 405
    assert resp.content_type == "application/problem+json"
    assert "Allow" in resp.headers
