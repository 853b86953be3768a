"""Streaming: tokens in order, logs, errors, resuming a dropped stream exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import attrs
import pytest
from aiohttp import web

from replicate_async import AsyncReplicate, FileOutput, Prediction, ServerSentEvent, StreamError
from replicate_async.testing import FakeReplicate
from tests.helpers import eventually

from .conftest import newest_prediction_id, serve

PROMPT = "the quick brown fox jumps over the lazy dog"


def outputs(events: list[ServerSentEvent]) -> list[str]:
    return [e.data for e in events if e.event == "output"]


async def collect(stream: AsyncIterator[ServerSentEvent]) -> list[ServerSentEvent]:
    return [event async for event in stream]


async def test_stream_yields_tokens_in_order_then_done(client: AsyncReplicate) -> None:
    events = await collect(client.stream("fake/tokens", input={"prompt": PROMPT}))
    assert [e.event for e in events] == ["logs"] + ["output"] * 9 + ["done"]
    assert events[0].data == "Running tokens model"
    assert "".join(outputs(events)) == PROMPT
    assert outputs(events)[:3] == ["the", " quick", " brown"]
    assert events[-1].json() == {}


async def test_stream_live_while_the_model_runs(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Tokens arrive over 0.3 s: they are yielded as they come, not at the end."""
    replicate_fake.set_model_behaviour("fake/tokens", duration=0.3)
    seen_while_running = 0
    events = []
    async for event in client.stream("fake/tokens", input={"prompt": PROMPT}):
        events.append(event)
        if event.event == "output":
            pid = await newest_prediction_id(client)
            assert pid is not None
            current = replicate_fake.prediction(pid)
            assert current is not None
            seen_while_running += current["status"] == "processing"
    assert "".join(outputs(events)) == PROMPT
    assert seen_while_running >= 5
    assert replicate_fake.count("GET", "/v1/streams/*") == 1


async def test_multiline_output_survives_the_stream(client: AsyncReplicate) -> None:
    prompt = "first line\nsecond line\n\n  indented\tend"
    events = await collect(client.stream("fake/tokens", input={"prompt": prompt}))
    assert "".join(outputs(events)) == prompt
    assert "\n\n  indented" in outputs(events)  # one event whose data spans three lines


async def test_stream_an_existing_prediction(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """``predictions.stream`` follows ``urls.stream`` (and replays a finished run)."""
    prediction = await client.predictions.create(
        version="fake/tokens", input={"prompt": "one two three"}, stream=True
    )
    await replicate_fake.wait_for_prediction(prediction.id)
    events = await collect(client.predictions.stream(prediction))
    assert outputs(events) == ["one", " two", " three"]
    assert events[-1].event == "done"
    stream = replicate_fake.requests_matching("GET", f"/v1/streams/{prediction.id}")[0]
    assert stream.headers["accept"] == "text/event-stream"


async def test_error_event_raises_stream_error(client: AsyncReplicate) -> None:
    with pytest.raises(StreamError) as info:
        await collect(client.stream("fake/fail", input={"error": "out of memory"}))
    assert "out of memory" in str(info.value)
    assert json.loads(info.value.detail) == {"detail": "out of memory"}


async def test_error_event_passes_through_when_asked(client: AsyncReplicate) -> None:
    events = await collect(
        client.stream("fake/fail", input={"error": "out of memory"}, raise_on_error=False)
    )
    assert [e.event for e in events][-2:] == ["error", "done"]
    assert events[-2].json() == {"detail": "out of memory"}
    assert events[-1].json() == {"reason": "error"}
    assert [e.data for e in events if e.event == "logs"][-1] == "out of memory"


async def test_cancelling_the_consumer_cancels_the_prediction(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    replicate_fake.set_model_behaviour("fake/tokens", duration=2.0)  # 0.2 s per event
    second_output = asyncio.Event()

    async def consume() -> None:
        async for event in client.stream("fake/tokens", input={"prompt": PROMPT}):
            if event.data == " quick":
                second_output.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(second_output.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = await newest_prediction_id(client)
    assert pid is not None
    found = replicate_fake.prediction(pid)
    assert found is not None
    assert found["status"] == "canceled"


async def test_breaking_out_of_the_stream_cancels_the_prediction(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Leaving the loop before ``done`` (closed with aclosing) cancels it on the server."""
    replicate_fake.set_model_behaviour("fake/tokens", duration=2.0)  # 0.2 s per event
    seen: list[str] = []
    async with contextlib.aclosing(client.stream("fake/tokens", input={"prompt": PROMPT})) as s:
        async for event in s:
            if event.event == "output":
                seen.append(event.data)
                break
    assert len(seen) == 1
    pid = await newest_prediction_id(client)
    assert pid is not None
    found = replicate_fake.prediction(pid)
    assert found is not None
    assert found["status"] == "canceled"
    assert replicate_fake.count("POST", f"/v1/predictions/{pid}/cancel") == 1


async def test_a_finished_stream_sends_no_cancel(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """A stream read to ``done`` leaves the prediction alone: no cancel request."""
    events = await collect(client.stream("fake/tokens", input={"prompt": PROMPT}))
    assert events[-1].event == "done"
    assert replicate_fake.count("POST", "/v1/predictions/*/cancel") == 0


# -- resuming -----------------------------------------------------------------------------


@attrs.define
class CuttingProxy:
    """Relays a fake's SSE stream, cutting the first connection after ``cut_after``
    events plus half of the next one; records each connection's ``Last-Event-ID``."""

    fake: FakeReplicate
    cut_after: int
    last_event_ids: list[str | None] = attrs.field(factory=list)
    origin: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.last_event_ids.append(request.headers.get("Last-Event-ID"))
        first = len(self.last_event_ids) == 1
        headers = {"Accept": "text/event-stream"}
        if "Last-Event-ID" in request.headers:
            headers["Last-Event-ID"] = request.headers["Last-Event-ID"]
        url = self.fake.url(f"/v1/streams/{request.match_info['id']}")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        buffer = b""
        sent = 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers) as upstream,
        ):
            async for chunk in upstream.content.iter_any():
                if not first:
                    await resp.write(chunk)
                    continue
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    if sent == self.cut_after:  # half an event, then a reset
                        await resp.write(block[: len(block) // 2])
                        assert request.transport is not None
                        request.transport.abort()
                        return resp
                    await resp.write(block + b"\n\n")
                    sent += 1
        await resp.write_eof()
        return resp


@pytest.fixture
async def cutting_proxy(replicate_fake: FakeReplicate) -> AsyncIterator[CuttingProxy]:
    proxy = CuttingProxy(replicate_fake, cut_after=4)
    app = web.Application()
    app.router.add_get("/streams/{id}", proxy.handle)
    async with serve(app) as origin:
        proxy.origin = origin
        yield proxy


def via(prediction: Prediction, proxy: CuttingProxy) -> Prediction:
    assert prediction.urls is not None
    url = f"{proxy.origin}/streams/{prediction.id}"
    return attrs.evolve(prediction, urls=attrs.evolve(prediction.urls, stream=url))


@pytest.mark.parametrize("live", [False, True], ids=["replayed", "live"])
async def test_dropped_stream_resumes_with_last_event_id_exactly_once(
    replicate_fake: FakeReplicate,
    client: AsyncReplicate,
    cutting_proxy: CuttingProxy,
    live: bool,
) -> None:
    """A reset mid-event: the SDK reconnects with ``Last-Event-ID`` of the last complete
    event and the events seen are the full sequence, each exactly once."""
    if live:
        replicate_fake.set_model_behaviour("fake/tokens", duration=0.5)
    prediction = await client.predictions.create(version="fake/tokens", input={"prompt": PROMPT})
    seen = await collect(client.predictions.stream(via(prediction, cutting_proxy)))

    await replicate_fake.wait_for_prediction(prediction.id)
    reference = await collect(client.predictions.stream(prediction))  # one clean read
    assert [(e.event, e.data, e.id) for e in seen] == [(e.event, e.data, e.id) for e in reference]
    assert "".join(outputs(seen)) == PROMPT
    assert len({e.id for e in seen if e.event != "done"}) == len(seen) - 1
    assert len(cutting_proxy.last_event_ids) == 2
    assert cutting_proxy.last_event_ids[0] is None
    assert cutting_proxy.last_event_ids[1] == seen[3].id  # the 4th event, the last whole one


# -- idle timeout -------------------------------------------------------------------------


async def test_idle_timeout_bounds_silence_not_the_whole_stream(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """1 s of tokens, one every ~0.1 s, with a 0.4 s idle timeout: one connection."""
    replicate_fake.set_model_behaviour("fake/tokens", duration=1.0)
    events = await collect(client.stream("fake/tokens", input={"prompt": PROMPT}, idle_timeout=0.4))
    assert "".join(outputs(events)) == PROMPT
    assert replicate_fake.count("GET", "/v1/streams/*") == 1


async def test_idle_gaps_longer_than_the_timeout_resume_without_loss(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Every gap (0.3 s) exceeds the idle timeout (0.2 s): each silence reconnects with
    ``Last-Event-ID``, and still every event arrives exactly once."""
    replicate_fake.set_model_behaviour("fake/tokens", duration=1.2)
    events = await collect(
        client.stream("fake/tokens", input={"prompt": "a b c"}, idle_timeout=0.2)
    )
    assert [(e.event, e.data) for e in events] == [
        ("logs", "Running tokens model"),
        ("output", "a"),
        ("output", " b"),
        ("output", " c"),
        ("done", "{}"),
    ]
    streams = replicate_fake.requests_matching("GET", "/v1/streams/*")
    assert len(streams) >= 3
    # Reconnects after the first event resume from an id the SDK had seen.
    resumed = [r.headers.get("last-event-id") for r in streams[1:]]
    ids = {e.id for e in events}
    assert [i for i in resumed if i], resumed
    assert all(i in ids for i in resumed if i), (resumed, ids)


async def test_a_stalled_stream_gives_up_after_max_reconnects(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    replicate_fake.set_model_behaviour("fake/tokens", queue_time=30, duration=1)
    with pytest.raises(StreamError, match="3 times in a row"):
        await collect(
            client.stream(
                "fake/tokens", input={"prompt": PROMPT}, idle_timeout=0.1, max_reconnects=2
            )
        )
    await eventually(lambda: replicate_fake.count("GET", "/v1/streams/*") == 3)


async def test_stream_output_yields_text_fragments(client: AsyncReplicate) -> None:
    """stream_output() yields just the text of a text stream, in order."""
    pieces = [
        piece async for piece in client.stream_output("fake/tokens", input={"prompt": PROMPT})
    ]
    assert all(isinstance(piece, str) for piece in pieces)
    assert "".join(str(piece) for piece in pieces) == PROMPT


async def test_stream_output_yields_files_for_a_file_stream(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """A stream URL under /v1/files/ makes every output a FileOutput that downloads."""
    outputs = [o async for o in client.stream_output("fake/image", input={"prompt": "a cat"})]
    assert outputs
    assert all(isinstance(o, FileOutput) for o in outputs)
    first = outputs[0]
    assert isinstance(first, FileOutput)
    assert (await first.read()).startswith(b"\x89PNG")
    streams = replicate_fake.requests_matching("GET", "/v1/files/fstream-*")
    assert len(streams) == 1
