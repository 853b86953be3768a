"""Recorded response statuses, rate-limit bursts, SSE faults, quiet client disconnects."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import pytest

from replicate_async.testing import FakeReplicate, ManualClock
from replicate_async.testing._ratelimit import TokenBucket

from .conftest import Api
from .test_fake_webhooks_sse import parse_sse

CREATE = {"version": "fake/echo", "input": {}}


async def test_recorded_status(api: Api, replicate_fake: FakeReplicate) -> None:
    assert (await api.get("/v1/account")).status == 200
    assert (await api.get("/v1/account", auth=False)).status == 401
    replicate_fake.faults.add("/v1/account", status=503)
    assert (await api.get("/v1/account")).status == 503
    assert (await api.get("/v1/nothing-here")).status == 404
    await api.create("fake/echo", {})
    replicate_fake.faults.add("/v1/hardware", slow_body=0.001)
    assert (await api.get("/v1/hardware")).status == 200
    assert [(r.path, r.status) for r in replicate_fake.requests] == [
        ("/v1/account", 200),
        ("/v1/account", 401),
        ("/v1/account", 503),
        ("/v1/nothing-here", 404),
        ("/v1/predictions", 201),
        ("/v1/hardware", 200),
    ]


async def test_recorded_status_is_none_when_dropped(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    for where in ("before_body", "after_body"):
        replicate_fake.faults.add("/v1/predictions", method="POST", drop_connection=where)  # type: ignore[arg-type]
        with pytest.raises(aiohttp.ClientConnectionError):
            await api.post("/v1/predictions", json=CREATE)
    assert [r.status for r in replicate_fake.requests] == [None, None]
    assert [r.fault for r in replicate_fake.requests] == [True, True]


async def test_burst_of_one_refills_on_the_manual_clock() -> None:
    clock = ManualClock()
    options: dict[str, Any] = {
        "clock": clock,
        "rate_limits_enabled": True,
        "create_limit_per_minute": 60,
        "create_burst": 1,
        "other_limit_per_minute": 6,
        "other_burst": 2,
    }
    async with FakeReplicate(**options) as fake, aiohttp.ClientSession() as s:
        api = Api(fake, s)
        first = await api.post("/v1/predictions", json=CREATE)
        assert (first.status, first.headers["ratelimit-remaining"]) == (201, "0")
        throttled = await api.post("/v1/predictions", json=CREATE)
        assert throttled.status == 429
        assert throttled.headers["Retry-After"] == "1"
        assert throttled.json()["retry_after"] == 1
        clock.advance(0.5)
        assert (await api.post("/v1/predictions", json=CREATE)).status == 429
        clock.advance(0.5)
        assert (await api.post("/v1/predictions", json=CREATE)).status == 201
        # A long pause refills no more than the burst.
        clock.advance(600)
        assert (await api.post("/v1/predictions", json=CREATE)).status == 201
        assert (await api.post("/v1/predictions", json=CREATE)).status == 429

        # 6 per minute with a burst of 2: two requests, then one every 10 s.
        assert [(await api.get("/v1/account")).status for _ in range(3)] == [200, 200, 429]
        assert (await api.get("/v1/account")).headers["Retry-After"] == "10"
        clock.advance(10)
        assert [(await api.get("/v1/account")).status for _ in range(2)] == [200, 429]

        creates = fake.requests_matching("POST", "/v1/predictions")
        assert [r.status for r in creates].count(429) == 3
        assert sum(r.status == 429 for r in fake.requests) == 6


async def test_default_burst_is_a_minute() -> None:
    clock = ManualClock()
    bucket = TokenBucket(6, clock)
    assert [bucket.take()[0] for _ in range(7)] == [True] * 6 + [False]
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(6, clock, 0)
    assert FakeReplicate(seed=False, create_burst=3).options.create_burst == 3


async def read_until_cut(resp: aiohttp.ClientResponse) -> tuple[str, BaseException | None]:
    """Read an SSE body until it ends or breaks; return the text and the error."""
    chunks: list[bytes] = []
    try:
        async for chunk in resp.content.iter_any():
            chunks.append(chunk)
    except aiohttp.ClientError as exc:
        return b"".join(chunks).decode(), exc
    return b"".join(chunks).decode(), None


async def test_sse_drop_after_events_and_resume(
    api: Api, replicate_fake: FakeReplicate, http: aiohttp.ClientSession
) -> None:
    created = await api.create("fake/tokens", {"prompt": "Once upon a time"})
    await replicate_fake.wait_for_prediction(created["id"])
    full = parse_sse((await api.get(created["urls"]["stream"])).text)
    assert len(full) == 6  # logs, 4 outputs, done

    fault = replicate_fake.faults.add(path="/v1/streams/*", drop_after_events=2)
    async with http.get(created["urls"]["stream"]) as resp:
        assert resp.status == 200
        text, error = await asyncio.wait_for(read_until_cut(resp), 5)
    assert isinstance(error, aiohttp.ClientPayloadError)
    received = parse_sse(text)
    assert received == full[:2]
    assert fault.hits == 1

    last_id = received[-1]["id"]
    async with http.get(created["urls"]["stream"], headers={"Last-Event-ID": last_id}) as resp:
        text, error = await asyncio.wait_for(read_until_cut(resp), 5)
    assert error is None
    assert parse_sse(text) == full[2:]
    statuses = [r.status for r in replicate_fake.requests_matching("GET", "/v1/streams/*")]
    assert statuses == [200, 200, 200]
    assert replicate_fake.server_errors == []


async def test_sse_drop_after_events_live() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as s:
        api = Api(fake, s)
        fake.set_model_behaviour("fake/tokens", duration=4.0)  # 1 log + 3 tokens
        created = await api.create("fake/tokens", {"prompt": "a b c"})
        fake.faults.add(path="/v1/files/fstream-*")  # a no-op fault elsewhere is ignored
        fake.faults.add(path="/v1/streams/*", drop_after_events=1)
        async with s.get(created["urls"]["stream"]) as resp:
            reader = asyncio.ensure_future(read_until_cut(resp))
            await clock.wait_for_sleepers(1)
            clock.advance(1)
            text, error = await asyncio.wait_for(reader, 5)
        assert isinstance(error, aiohttp.ClientPayloadError)
        (first,) = parse_sse(text)
        assert first["data"] == "Running tokens model"
        await clock.advance_async(10)
        await fake.wait_for_prediction(created["id"])
        headers = {"Last-Event-ID": first["id"]}
        resumed = parse_sse((await api.get(created["urls"]["stream"], headers=headers)).text)
        assert [e["data"] for e in resumed] == ["a", " b", " c", "{}"]


async def test_sse_drop_after_zero_events_and_slow_events(
    api: Api, replicate_fake: FakeReplicate, http: aiohttp.ClientSession
) -> None:
    created = await api.create("fake/tokens", {"prompt": "a b c"})
    await replicate_fake.wait_for_prediction(created["id"])
    replicate_fake.faults.add(path="/v1/streams/*", drop_after_events=0)
    async with http.get(created["urls"]["stream"]) as resp:
        text, error = await asyncio.wait_for(read_until_cut(resp), 5)
    assert (text, type(error)) == ("", aiohttp.ClientPayloadError)

    replicate_fake.faults.add(path="/v1/streams/*", slow_events=0.02)
    started = time.perf_counter()
    events = parse_sse((await api.get(created["urls"]["stream"])).text)
    assert len(events) == 5  # logs, 3 outputs, done: 4 pauses
    assert time.perf_counter() - started >= 0.08
    # slow_body leaves SSE streams alone (whole-body pacing is for plain responses).
    replicate_fake.faults.add(path="/v1/streams/*", slow_body=5)
    fast = await asyncio.wait_for(api.get(created["urls"]["stream"]), 2)
    assert parse_sse(fast.text) == events
    with pytest.raises(ValueError, match="drop_after_events"):
        replicate_fake.faults.add(path="/v1/streams/*", drop_after_events=-1)


async def test_client_disconnect_during_slow_body_is_quiet(
    replicate_fake: FakeReplicate,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    replicate_fake.faults.add("/v1/hardware", slow_body=0.05)
    async with http.get(
        replicate_fake.url("/v1/hardware"), headers=replicate_fake.auth_headers
    ) as r:
        assert r.status == 200
        r.close()  # hang up after the headers
    await asyncio.sleep(0.3)  # let the fake try (and fail) to write the rest
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert "Error handling request" not in caplog.text
    assert replicate_fake.server_errors == []
    (recorded,) = replicate_fake.requests_matching("GET", "/v1/hardware")
    assert recorded.status == 200
    # The server is still fine afterwards.
    async with http.get(
        replicate_fake.url("/v1/hardware"), headers=replicate_fake.auth_headers
    ) as r:
        assert r.status == 200
