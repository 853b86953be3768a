"""Raw responses of event streams, against the fake server over real sockets:
``client.stream(...).last_response`` and ``predictions.stream(p).last_response``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from replicate_async import AsyncReplicate
from replicate_async.testing import FakeReplicate


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate() as server:
        yield server


async def test_client_stream_exposes_the_sse_response(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        stream = client.stream("fake/tokens", input={"prompt": "a b"})
        assert stream.last_response is None
        events = [event.event async for event in stream]
    assert events[-1] == "done"
    raw = stream.last_response
    assert raw is not None
    assert (raw.method, raw.status, raw.retries) == ("GET", 200, 0)
    assert "/v1/streams/" in raw.url
    assert raw.headers["Content-Type"].startswith("text/event-stream")
    assert raw.elapsed >= 0
    assert raw.parse() is None


async def test_predictions_stream_exposes_the_sse_response(fake: FakeReplicate) -> None:
    client: AsyncReplicate
    async with fake.client() as client:
        prediction = await client.predictions.create(
            version="fake/tokens", input={"prompt": "a b"}, stream=True
        )
        events = client.predictions.stream(prediction)
        assert events.last_response is None
        seen = [event.event async for event in events]
        await events.aclose()
    assert seen[-1] == "done"
    raw = events.last_response
    assert raw is not None
    assert raw.status == 200
    assert raw.url == (prediction.urls.stream if prediction.urls else None)
