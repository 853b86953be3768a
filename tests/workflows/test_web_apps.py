"""Webhooks from any framework (``WebhookWaiter.handle``, ``listen=False``, ``bus=``), the
framework-neutral verify-and-parse helper, and ``client.predictions.run``."""

from __future__ import annotations

import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from replicate_async import AsyncReplicate, ModelError, Prediction, WebhookWaiter
from replicate_async._workflows.bus import MemoryBus
from replicate_async.exceptions import WebhookVerificationError
from replicate_async.testing import FakeReplicate
from replicate_async.webhooks import sign, verify_prediction

HOOK = "http://app.test/replicate-webhook"


def starlette_app(waiter: WebhookWaiter) -> Starlette:
    """An app that routes its webhook endpoint to the waiter (no port of the waiter's)."""

    async def webhook(request: Request) -> PlainTextResponse:
        status, text = await waiter.handle(request.headers, await request.body())
        return PlainTextResponse(text, status_code=status)

    return Starlette(routes=[Route("/replicate-webhook", webhook, methods=["POST"])])


async def test_a_starlette_route_feeds_the_waiter(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    waiter = WebhookWaiter.from_client(client, listen=False, public_url=HOOK)
    replicate_fake.deliver_webhooks_to(starlette_app(waiter))
    async with waiter:
        assert await waiter.run(client, "fake/upper", input={"text": "pushed"}) == "PUSHED"
        assert waiter._runner is None  # never bound a port
    create = replicate_fake.requests_matching("POST", "/v1/models/fake/upper/predictions")[0]
    assert create.json()["webhook"] == HOOK
    assert replicate_fake.count("GET", "/v1/predictions/*") == 0  # no polling
    assert waiter.stats == {"deliveries": 1, "safety_polls": 0}


async def test_handle_verifies_and_deduplicates(client: AsyncReplicate) -> None:
    secret = "whsec_" + "QUJD" * 8
    waiter = WebhookWaiter(secret, listen=False, public_url=HOOK)
    body = b'{"id": "p1", "status": "succeeded", "output": "ok"}'
    now = int(time.time())
    headers = {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(now),
        "Webhook-Signature": sign(body, secret, msg_id="msg_1", timestamp=now),
    }
    assert await waiter.handle(headers, body) == (200, "ok")
    assert await waiter.handle(headers, body) == (200, "duplicate delivery")
    assert await waiter.handle({**headers, "Webhook-Id": "msg_2"}, body) == (
        400,
        "invalid webhook delivery",
    )
    done = await waiter.wait("p1", timeout=1)
    assert (done.id, done.status, done.output) == ("p1", "succeeded", "ok")
    assert verify_prediction(headers, body, secret).id == "p1"
    with pytest.raises(WebhookVerificationError):
        verify_prediction({}, body, secret)
    await waiter.aclose()


async def test_a_shared_bus_resolves_a_wait_on_another_instance(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Instance A receives the webhook; instance B is the one waiting: one bus between them."""
    bus = MemoryBus()
    receiver = WebhookWaiter.from_client(client, listen=False, public_url=HOOK, bus=bus)
    runner = WebhookWaiter.from_client(client, listen=False, public_url=HOOK, bus=bus)
    replicate_fake.deliver_webhooks_to(starlette_app(receiver))
    output = await runner.run(client, "fake/upper", input={"text": "fleet"})
    assert output == "FLEET"
    assert (receiver.stats["deliveries"], runner.stats["deliveries"]) == (1, 0)
    await receiver.aclose()
    await runner.aclose()
    await bus.aclose()


def test_listen_false_needs_the_public_url() -> None:
    with pytest.raises(ValueError, match="public_url"):
        WebhookWaiter("whsec_" + "QUJD" * 8, listen=False)


async def test_predictions_run_returns_the_terminal_prediction(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    prediction = await client.predictions.run("fake/upper", input={"text": "hi"})
    assert isinstance(prediction, Prediction)
    assert (prediction.status, prediction.output) == ("succeeded", "HI")
    assert replicate_fake.prediction(prediction.id) is not None
    create = replicate_fake.requests_matching("POST", "/v1/models/fake/upper/predictions")[0]
    assert create.headers["prefer"] == "wait=5"
    with pytest.raises(ModelError) as info:
        await client.predictions.run("fake/fail", input={"error": "out of memory"})
    failed = info.value.prediction
    assert isinstance(failed, Prediction)
    assert failed.status == "failed"
