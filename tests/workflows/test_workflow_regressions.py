"""One regression test per finding of issue #15 (items 1-8), over real sockets, asserting
what the server saw (runs started, cancels received, final statuses), on virtual time."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from replicate_async import ClientClosedError, Prediction, WebhookWaiter
from replicate_async._converter import structure
from replicate_async._core.sse_reader import MAX_RETRY_DELAY, reconnect_delay
from replicate_async.exceptions import BadRequestError
from replicate_async.testing import ManualClock
from tests.helpers import eventually

from ._virtual import POLL, PROMPT, cancels, newest, reach, status, virtual_client, virtual_fake
from .conftest import serve

CREATE = "/v1/models/fake/upper/predictions"


# -- 1, 2: run_many ------------------------------------------------------------------------


async def test_1_an_error_from_the_inputs_iterator_is_raised_at_once() -> None:
    def inputs() -> Iterator[dict[str, Any]]:
        yield {"text": "first"}
        raise RuntimeError("the input source broke")

    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        now = clock.monotonic()
        with pytest.raises(RuntimeError, match="the input source broke"):
            async for _ in client.run_many("fake/slow", inputs(), concurrency=4):
                pass
        assert clock.monotonic() == now
        assert await client.inflight.drain()
        assert all(p.status == "canceled" for p in _made(fake))


async def test_2_run_many_never_runs_ahead_of_its_consumer() -> None:
    """concurrency=10 and a consumer that stops after 5 results: at most 5 + 10 started
    (the old unbounded queue started 260), and leaving cancels the ones in flight."""
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        fake.set_model_behaviour("fake/upper", duration=0)
        taken = 0
        inputs = ({"text": str(i)} for i in range(1000))
        async with client.run_many("fake/upper", inputs, concurrency=10) as results:
            async for result in results:
                assert result.ok
                taken += 1
                if taken == 5:
                    break
        started = fake.count("POST", CREATE)
        assert 5 <= started <= 15
        assert await client.inflight.drain()
        assert {p.status for p in _made(fake)} <= {"succeeded", "canceled"}


# -- 3: sibling uploads --------------------------------------------------------------------


async def test_3_one_failed_upload_cancels_its_siblings(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"big{i}.bin"
        path.write_bytes(bytes([i]) * (300 * 1024))  # above the data: URL threshold
        files.append(path)
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        fake.faults.add("/v1/files", method="POST", status=400, times=1)
        fake.faults.add("/v1/files", method="POST", delay=600, times=2)
        before = asyncio.all_tasks()
        with pytest.raises(BadRequestError):  # the failure itself, not an ExceptionGroup
            await client.run("fake/echo", input={"files": files})
        assert fake.count("POST", "/v1/files") >= 1
        left = [t for t in asyncio.all_tasks() - before if not t.done()]
        sdk = [t for t in left if "/replicate_async/_" in t.get_coro().cr_code.co_filename]  # type: ignore[union-attr]
        assert sdk == []  # no sibling upload left running
        assert fake.count("POST", "/v1/models/fake/echo/predictions") == 0


# -- 4: closing a waiter --------------------------------------------------------------------


async def test_4_closing_a_waiter_fails_its_waits_plainly_and_cancels_the_runs() -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        waiter = WebhookWaiter.from_client(client, safety_poll=None)
        await waiter.start()
        task = asyncio.ensure_future(waiter.run(client, "fake/slow", input={}))
        pid = await reach(fake, clock, "hold")
        await eventually(lambda: fake.count("POST", "/v1/models/fake/slow/predictions") == 1)
        await asyncio.sleep(0.05)
        await waiter.aclose()
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(task, 10)
        assert await client.inflight.drain()
        assert status(fake, pid) == "canceled"
        assert cancels(fake, pid) == 1


# -- 5: a stream left, then the client closed ------------------------------------------------


async def test_5_a_stream_broken_out_of_is_canceled_when_the_client_closes() -> None:
    async with virtual_fake() as (fake, clock):
        async with virtual_client(fake, clock) as client:
            events = client.stream("fake/tokens", input={"prompt": PROMPT})
            ticking = asyncio.ensure_future(_tick(clock))
            async for _ in events:
                break  # and `events` is still referenced: no garbage collection saves us
            ticking.cancel()
            pid = newest(fake)
            assert pid is not None
        assert status(fake, pid) == "canceled"
        assert cancels(fake, pid) == 1
        del events


# -- 6: caller cancellation latency: see test_abandon.py (every phase, virtual time) -------


async def test_6_an_outer_timeout_during_the_hold_returns_without_waiting_for_it() -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        task = asyncio.ensure_future(client.run("fake/slow", input={}, wait=60))
        pid = await reach(fake, clock, "hold")
        now = clock.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert clock.monotonic() == now  # not hold + 5 s, as before
        await clock.advance_async(60)
        assert await client.inflight.drain()
        assert status(fake, pid) == "canceled"
        assert cancels(fake, pid) == 1


# -- 7: trainings take files ---------------------------------------------------------------


async def test_7_trainings_accept_the_same_file_inputs_as_predictions(tmp_path: Path) -> None:
    data = tmp_path / "train.txt"
    data.write_bytes(b"training data")
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        version = fake.latest_version_id("fake/echo")
        training = await client.trainings.create(
            f"fake/echo:{version}",
            destination="alice/my-model",
            input={"data": data, "raw": b"abc"},
        )
        assert training.id
        body = fake.requests_matching("POST", f"/v1/models/fake/echo/versions/{version}/trainings")
        sent = body[0].json()["input"]
        assert (
            sent["data"] == "data:text/plain;base64," + base64.b64encode(b"training data").decode()
        )
        assert sent["raw"] == "data:application/octet-stream;base64,YWJj"


# -- 8: SSE retry: -------------------------------------------------------------------------


async def test_8_a_dropped_stream_reconnects_after_the_servers_retry_delay() -> None:
    connections: list[str | None] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        connections.append(request.headers.get("Last-Event-ID"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if len(connections) == 1:
            await resp.write(b"retry: 3000\nid: 1\nevent: output\ndata: a\n\n")
            assert request.transport is not None
            request.transport.close()  # dropped mid-stream
            return resp
        await resp.write(b"id: 2\nevent: output\ndata: b\n\nevent: done\ndata: {}\n\n")
        return resp

    app = web.Application()
    app.router.add_get("/stream", stream)
    async with (
        serve(app) as origin,
        virtual_fake() as (fake, clock),
        virtual_client(fake, clock) as client,
    ):
        prediction = _streaming_prediction(f"{origin}/stream")
        seen: list[str] = []

        async def consume() -> None:
            async for event in client.predictions.stream(prediction):
                seen.append(event.data)

        task = asyncio.ensure_future(consume())
        await eventually(lambda: seen == ["a"] and clock.pending_sleepers >= 1)
        clock.advance(2.9)
        await asyncio.sleep(0.05)
        assert connections == [None]  # still waiting out the server's 3 s
        clock.advance(0.2)
        await asyncio.wait_for(task, 10)
    assert connections == [None, "1"]
    assert seen == ["a", "b", "{}"]


def test_8_the_servers_retry_is_bounded() -> None:
    assert reconnect_delay(3000, 1) == 3.0
    assert reconnect_delay(10**9, 1) == MAX_RETRY_DELAY
    assert reconnect_delay(None, 1) == 0.2


def _streaming_prediction(url: str) -> Prediction:
    data = {
        "id": "p1",
        "model": "fake/tokens",
        "version": "v",
        "input": {},
        "status": "processing",
        "created_at": "2026-01-01T00:00:00Z",
        "urls": {"get": "https://x/p1", "cancel": "https://x/p1/cancel", "stream": url},
    }
    result: Prediction = structure(data, Prediction)
    return result


async def _tick(clock: ManualClock) -> None:
    """Let virtual time run (one second per real step) until cancelled."""
    for _ in range(10_000):
        await clock.advance_async(1)
        await asyncio.sleep(0.001)


def _made(fake: Any) -> list[Any]:
    from ._virtual import _SEEDED

    return [p for key, p in fake.predictions.items() if key not in _SEEDED[fake]]


async def test_aclose_waits_for_cancels_but_only_so_long() -> None:
    """A cancel that hangs does not hang the shutdown: ``aclose()`` gives up after 10 s."""
    async with virtual_fake() as (fake, clock):
        client = virtual_client(fake, clock)
        task = asyncio.ensure_future(client.run("fake/slow", input={}, wait=False))
        await reach(fake, clock, "polling")
        fake.faults.add("/v1/predictions/*/cancel", method="POST", delay=1.0)
        closing = asyncio.ensure_future(client.aclose())
        await eventually(lambda: fake.count("POST", "/v1/predictions/*/cancel") == 1)
        assert not closing.done()  # waiting for the cancel...
        start = clock.monotonic()
        await clock.advance_async(10)
        await asyncio.wait_for(closing, 10)
        assert clock.monotonic() - start == 10
        cancel = fake.requests_matching("POST", "/v1/predictions/*/cancel")[0]
        assert cancel.status is None  # aclose() returned while the cancel was unanswered
        with pytest.raises(ClientClosedError):
            await task


async def test_aclose_never_sends_a_create_that_was_still_queued() -> None:
    """One held slot, one held run on it, a second run queued behind it: closing the client
    cancels the first and refuses the second before it is sent (no create, nothing to pay)."""
    async with virtual_fake() as (fake, clock):
        client = fake.client(clock=clock, poll=POLL, max_connections=1)
        first = asyncio.ensure_future(client.run("fake/slow", input={}))
        await reach(fake, clock, "hold")
        second = asyncio.ensure_future(client.run("fake/slow", input={"n": 2}))
        for _ in range(20):  # the second create is now queued for the held slot
            await asyncio.sleep(0)
        closing = asyncio.ensure_future(client.aclose())
        for _ in range(100):  # virtual time: the held create answers, then is canceled
            if closing.done():
                break
            await clock.advance_async(0.5)
        await asyncio.wait_for(closing, 10)
        for task in (first, second):
            with pytest.raises(ClientClosedError):
                await task
        assert fake.count("POST", "/v1/models/fake/slow/predictions") == 1
        assert [p.status for p in _made(fake)] == ["canceled"]
