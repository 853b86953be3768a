"""Events that arrive together (one chunk) are handed out one at a time, in order, by
``client.stream``, ``stream_output`` and ``predictions.stream``, with errors, ``done`` and
leaving early behaving exactly as for events that arrive one by one."""

from __future__ import annotations

import contextlib

import pytest
from aioresponses import aioresponses

from replicate_async import AsyncReplicate, Prediction, ServerSentEvent, StreamError
from replicate_async._converter import structure
from tests.helpers import example

from ._helpers import API, request_count, sent

VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
PRED = example("prediction-create-stream-url")
STREAM = PRED["urls"]["stream"]
CANCEL = f"{API}/predictions/{PRED['id']}/cancel"


def _sse(*events: tuple[str, str]) -> bytes:
    """One body (so one chunk) holding every event."""
    return b"".join(
        f"event: {kind}\nid: 1:{i}\ndata: {data}\n\n".encode()
        for i, (kind, data) in enumerate(events)
    )


def _serve(mocked: aioresponses, body: bytes) -> None:
    mocked.post(f"{API}/predictions", status=201, payload=PRED)
    mocked.get(STREAM, body=body, headers={"Content-Type": "text/event-stream"})
    mocked.post(CANCEL, payload={**PRED, "status": "canceled"})


TOKENS = [("output", f"token {i}") for i in range(5)]


async def test_one_chunk_of_events_comes_out_in_order(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    _serve(mocked, _sse(*TOKENS, ("done", "{}")))
    stream = client.stream(VERSION, input={"prompt": "x"})
    events = [event async for event in stream]
    assert [(e.event, e.data) for e in events] == [*TOKENS, ("done", "{}")]
    assert all(isinstance(e, ServerSentEvent) for e in events)
    assert stream.last_response is not None
    assert stream.last_response.status == 200
    assert request_count(mocked) == 2  # create, stream: finished, so no cancel


async def test_stream_output_of_one_chunk(client: AsyncReplicate, mocked: aioresponses) -> None:
    _serve(mocked, _sse(("logs", "warming up"), *TOKENS, ("done", "{}")))
    outputs = [text async for text in client.stream_output(VERSION, input={"prompt": "x"})]
    assert outputs == [data for _, data in TOKENS]


async def test_events_before_an_error_in_the_same_chunk_come_first(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    _serve(mocked, _sse(*TOKENS[:2], ("error", "out of memory"), ("done", "{}")))
    seen: list[str] = []

    async def read() -> None:
        async for event in client.stream(VERSION, input={"prompt": "x"}):
            seen.append(event.data)

    with pytest.raises(StreamError, match="out of memory"):
        await read()
    assert seen == ["token 0", "token 1"]
    assert await client.inflight.drain()  # the cancel may finish in the background
    assert sent(mocked, "POST", CANCEL) is not None  # ended by the error: canceled


async def test_leaving_in_the_middle_of_a_chunk_cancels_the_prediction(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """Left before ``done`` arrived: canceled on the server."""
    _serve(mocked, _sse(*TOKENS))
    async with client.stream(VERSION, input={"prompt": "x"}) as events:
        async for event in events:
            assert event.data == "token 0"
            break
        second = await events.__anext__()  # the rest of the chunk is still there
        assert second.data == "token 1"
    with contextlib.suppress(StopAsyncIteration):  # left: the rest is dropped with it
        await events.__anext__()
    assert await client.inflight.drain()  # the cancel may finish in the background
    assert sent(mocked, "POST", CANCEL) is not None


async def test_leaving_after_done_arrived_sends_no_cancel(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """``done`` came in the chunk being read: the prediction is finished, nothing to cancel
    even if the loop is left before reaching it."""
    _serve(mocked, _sse(*TOKENS, ("done", "{}")))
    async with client.stream(VERSION, input={"prompt": "x"}) as events:
        async for _event in events:
            break
    assert await client.inflight.drain()
    assert request_count(mocked) == 2  # create, stream


async def test_predictions_stream_one_by_one_then_by_batches(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """``predictions.stream`` hands out a chunk's events singly; its ``batches()`` carries
    on from there, repeating none."""
    mocked.get(STREAM, body=_sse(*TOKENS, ("done", "{}")))
    stream = client.predictions.stream(structure(PRED, Prediction))
    first = await stream.__anext__()
    rest = [(e.event, e.data) async for batch in stream.batches() for e in batch]
    await stream.aclose()
    assert (first.event, first.data) == TOKENS[0]
    assert rest == [*TOKENS[1:], ("done", "{}")]
