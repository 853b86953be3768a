"""Webhook signing and delivery; SSE stream format, resume and live streaming."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from replicate_async.testing import FakeReplicate, ManualClock, sign_webhook, verify_webhook

from .conftest import Api, data


class Receiver:
    """A tiny webhook receiver on 127.0.0.1; ``fail_first`` answers 500 that many times."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500)
        return web.Response(status=204)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.calls]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook?customId=123"
    yield recv
    await runner.cleanup()


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Split an SSE body into events ({event, id, data})."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event: dict[str, Any] = {"id": None, "data": []}
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "data":
                event["data"].append(value)
            else:
                event[field] = value
        event["data"] = "\n".join(event["data"])
        events.append(event)
    return events


def test_signature_test_vector() -> None:
    vector = data("webhook-signature-test-vector.json")
    headers = vector["headers"]
    body = vector["body"].encode()
    signature = sign_webhook(
        vector["secret"], headers["webhook-id"], headers["webhook-timestamp"], body
    )
    assert signature == headers["webhook-signature"]
    assert signature == "v1," + vector["expected_signature_base64"]
    assert verify_webhook(vector["secret"], headers, body)
    assert not verify_webhook(vector["secret"], headers, body + b" ")
    assert not verify_webhook(vector["secret"], {}, body)


@pytest.mark.replicate_fake(webhook_throttle=0)
async def test_webhook_round_trip(
    api: Api, replicate_fake: FakeReplicate, receiver: Receiver
) -> None:
    secret = (await api.get("/v1/webhooks/default/secret")).json()["key"]
    assert secret.startswith("whsec_")
    resp = await api.post(
        "/v1/predictions",
        json={
            "version": "fake/tokens",
            "input": {"prompt": "a b"},
            "webhook": receiver.url,
            "webhook_events_filter": ["start", "output", "logs", "completed"],
        },
    )
    created = resp.json()
    assert created["webhook"] == receiver.url
    final = await replicate_fake.wait_for_prediction(created["id"])
    await replicate_fake.drain_webhooks()
    statuses = [e["status"] for e in receiver.events]
    assert statuses[0] == "starting"
    assert statuses[-1] == "succeeded"
    assert len(receiver.calls) == 1 + 1 + 2 + 1  # start, logs, 2 outputs, completed
    assert receiver.events[-1] == final
    ids = set()
    for headers, body in receiver.calls:
        assert verify_webhook(secret, headers, body)
        assert headers["Content-Type"] == "application/json"
        ids.add(headers["webhook-id"])
    assert len(ids) == len(receiver.calls)
    assert all(d.ok for d in replicate_fake.webhook_deliveries)


async def test_webhook_default_filter_and_throttle(receiver: Receiver) -> None:
    clock = ManualClock()
    fake = FakeReplicate(clock=clock)
    async with fake, aiohttp.ClientSession() as session:
        fake.set_model_behaviour("fake/tokens", duration=1.0)  # 5 steps, 0.2 s apart
        body = {
            "version": "fake/tokens",
            "input": {"prompt": "one two three four"},
            "webhook": receiver.url,
        }
        created = (await Api(fake, session).post("/v1/predictions", json=body)).json()
        await clock.advance_async(2)
        await fake.wait_for_prediction(created["id"])
        await fake.drain_webhooks()
    # Default: output + completed; outputs are throttled to one per 500 ms of the clock:
    # tokens at 0.4 s (sent), 0.6 s and 0.8 s (dropped), 1.0 s (sent).
    assert [e["status"] for e in receiver.events] == ["processing", "processing", "succeeded"]
    assert receiver.events[0]["output"] == ["one"]
    assert receiver.events[1]["output"] == ["one", " two", " three", " four"]


async def test_terminal_webhook_is_retried(
    api: Api, replicate_fake: FakeReplicate, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    resp = await api.post(
        "/v1/predictions",
        json={
            "version": "fake/echo",
            "input": {},
            "webhook": receiver.url,
            "webhook_events_filter": ["completed"],
        },
    )
    await replicate_fake.wait_for_prediction(resp.json()["id"])
    await replicate_fake.drain_webhooks()
    assert len(receiver.calls) == 3
    assert len({h["webhook-id"] for h, _ in receiver.calls}) == 1  # same message, retried
    attempts = [(d.attempt, d.status) for d in replicate_fake.webhook_deliveries]
    assert attempts == [(1, 500), (2, 500), (3, 204)]


async def test_webhooks_only_go_to_loopback(api: Api, replicate_fake: FakeReplicate) -> None:
    resp = await api.post(
        "/v1/predictions",
        json={"version": "fake/echo", "input": {}, "webhook": "https://example.com/hook"},
    )
    await replicate_fake.wait_for_prediction(resp.json()["id"])
    await replicate_fake.drain_webhooks()
    deliveries = replicate_fake.webhook_deliveries
    assert [d.event for d in deliveries] == ["output", "completed"]
    for delivery in deliveries:
        assert delivery.status is None
        assert "loopback" in (delivery.error or "")


async def test_training_webhook(
    api: Api, replicate_fake: FakeReplicate, receiver: Receiver
) -> None:
    base = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf"
    resp = await api.post(
        f"/v1/models/stability-ai/sdxl/versions/{base}/trainings",
        json={"destination": "alice/my-model", "input": {}, "webhook": receiver.url},
    )
    await replicate_fake.wait_for_prediction(resp.json()["id"])
    await replicate_fake.drain_webhooks()
    assert receiver.events[-1]["status"] == "succeeded"
    assert receiver.events[-1]["output"]["version"].startswith("alice/my-model:")


async def test_sse_succeeded_stream_format(api: Api, replicate_fake: FakeReplicate) -> None:
    created = await api.create("fake/tokens", {"prompt": "Once upon a time"})
    await replicate_fake.wait_for_prediction(created["id"])
    resp = await api.get(created["urls"]["stream"], headers={"Accept": "text/event-stream"})
    assert resp.status == 200
    assert resp.content_type == data("sse-stream-transcripts.json")["content_type"]
    events = parse_sse(resp.text)
    assert [e["event"] for e in events] == ["logs"] + ["output"] * 4 + ["done"]
    assert "".join(e["data"] for e in events if e["event"] == "output") == "Once upon a time"
    assert resp.text.endswith("event: done\ndata: {}\n\n")
    for event in events[:-1]:
        second, _, counter = event["id"].partition(":")
        assert second.isdigit()
        assert counter.isdigit()
    assert events[-1]["id"] is None


async def test_sse_multiline_and_resume(api: Api, replicate_fake: FakeReplicate) -> None:
    created = await api.create("fake/tokens", {"prompt": "hello,\nthis is\n\nnew"})
    await replicate_fake.wait_for_prediction(created["id"])
    text = (await api.get(created["urls"]["stream"])).text
    assert "data: hello,\n\n" in text
    assert "\ndata: \ndata: \ndata: new\n\n" in text  # "\n\nnew" as three data lines
    events = parse_sse(text)
    assert [e["data"] for e in events if e["event"] == "output"] == [
        "hello,",
        "\nthis",
        " is",
        "\n\nnew",
    ]
    resumed = await api.get(created["urls"]["stream"], headers={"Last-Event-ID": events[2]["id"]})
    assert parse_sse(resumed.text) == events[3:]


async def test_sse_error_and_canceled_streams() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as s:
        api = Api(fake, s)
        failed = await api.create("fake/fail", {})
        await fake.wait_for_prediction(failed["id"])
        text = (await api.get(failed["urls"]["stream"])).text
        assert text.endswith(
            'event: error\ndata: {"detail": "Something went wrong"}\n\n'
            'event: done\ndata: {"reason": "error"}\n\n'
        )
        slow = await api.create("fake/slow", {})
        await clock.wait_for_sleepers(1)
        await api.post(slow["urls"]["cancel"])
        text = (await api.get(slow["urls"]["stream"])).text
        assert text.endswith('event: done\ndata: {"reason": "canceled"}\n\n')


async def test_tokens_stream_live() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake, aiohttp.ClientSession() as s:
        api = Api(fake, s)
        fake.set_model_behaviour("fake/tokens", duration=4.0)  # 4 steps: 1 log + 3 tokens
        created = await api.create("fake/tokens", {"prompt": "a b c"})
        async with s.get(created["urls"]["stream"]) as resp:
            assert resp.status == 200
            seen = []
            for expected in ("Running tokens model", "a", " b", " c"):
                await clock.wait_for_sleepers(1)
                clock.advance(1)
                chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
                (event,) = parse_sse(chunk.decode())
                assert event["data"] == expected
                seen.append(event["event"])
            tail = await asyncio.wait_for(resp.content.read(), 5)
        assert seen == ["logs", "output", "output", "output"]
        assert tail == b"event: done\ndata: {}\n\n"


async def test_file_stream(api: Api, replicate_fake: FakeReplicate) -> None:
    created = await api.create("fake/image", {"prompt": "x", "num_outputs": 2})
    await replicate_fake.wait_for_prediction(created["id"])
    assert "/v1/files/" in created["urls"]["stream"]
    events = parse_sse((await api.get(created["urls"]["stream"], auth=False)).text)
    outputs = [e["data"] for e in events if e["event"] == "output"]
    assert outputs == replicate_fake.prediction(created["id"])["output"]  # type: ignore[index]
    assert (await api.get("/v1/streams/unknown")).status == 404
