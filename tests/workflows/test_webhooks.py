"""Webhooks: a run whose completion is delivered, signed, to a local receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from replicate_async import AsyncReplicate, Prediction, WebhookVerificationError
from replicate_async.testing import FakeReplicate
from replicate_async.webhooks import sign, verify, webhook_handler

from .conftest import serve

VECTOR = Path(__file__).resolve().parents[1] / "examples" / "webhook-signature-test-vector.json"


class Receiver:
    """An aiohttp app around ``webhook_handler``; the secret comes from the API, once."""

    def __init__(self, client: AsyncReplicate, *, fail_first: int = 0) -> None:
        self.client = client
        self.fail_first = fail_first
        self.received: list[Prediction] = []
        self.url = ""
        self._secret: str | None = None

    async def secret(self) -> str:
        if self._secret is None:
            self._secret = (await self.client.webhooks.default.secret.get()).key
        return self._secret

    async def on_prediction(self, prediction: Prediction) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("the receiver's database is down")
        self.received.append(prediction)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks/replicate", webhook_handler(self.secret, self.on_prediction))
        return app


@pytest.fixture
async def receiver(client: AsyncReplicate) -> AsyncIterator[Receiver]:
    recv = Receiver(client)
    async with serve(recv.app()) as origin:
        recv.url = f"{origin}/hooks/replicate?customId=42"
        yield recv


async def test_completed_webhook_is_verified_and_typed(
    replicate_fake: FakeReplicate, client: AsyncReplicate, receiver: Receiver
) -> None:
    output = await client.run(
        "fake/upper",
        input={"text": "hook"},
        webhook=receiver.url,
        webhook_events_filter=["completed"],
    )
    await replicate_fake.drain_webhooks()

    (prediction,) = receiver.received
    assert isinstance(prediction, Prediction)
    assert prediction.status == "succeeded"
    assert prediction.output == output == "HOOK"
    assert prediction.webhook == receiver.url
    assert prediction.completed_at is not None
    (delivery,) = replicate_fake.webhook_deliveries
    assert delivery.ok
    assert delivery.event == "completed"
    assert replicate_fake.count("GET", "/v1/webhooks/default/secret") == 1
    assert await receiver.secret() == replicate_fake.webhook_secret
    create = replicate_fake.requests_matching("POST", "/v1/models/fake/upper/predictions")[0]
    assert create.json()["webhook_events_filter"] == ["completed"]


async def test_default_events_and_a_failed_receiver_retry(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Default filter: ``output`` and ``completed``. The receiver fails the first delivery
    (500): an intermediate one, which is not retried; the terminal one still arrives."""
    recv = Receiver(client, fail_first=1)
    async with serve(recv.app()) as origin:
        recv.url = f"{origin}/hooks/replicate"
        await client.run("fake/upper", input={"text": "again"}, webhook=recv.url)
        await replicate_fake.drain_webhooks()
    events = [(d.event, d.attempt, d.status) for d in replicate_fake.webhook_deliveries]
    assert events == [("output", 1, 500), ("completed", 1, 200)]
    assert [p.status for p in recv.received] == ["succeeded"]


async def test_terminal_delivery_retried_with_the_same_id_is_processed_once(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    recv = Receiver(client, fail_first=1)
    async with serve(recv.app()) as origin:
        recv.url = f"{origin}/hooks/replicate"
        await client.run(
            "fake/upper",
            input={"text": "retry"},
            webhook=recv.url,
            webhook_events_filter=["completed"],
        )
        await replicate_fake.drain_webhooks()
    deliveries = replicate_fake.webhook_deliveries
    assert [(d.attempt, d.status) for d in deliveries] == [(1, 500), (2, 200)]
    assert deliveries[0].webhook_id == deliveries[1].webhook_id
    assert [p.output for p in recv.received] == ["RETRY"]


async def test_forged_deliveries_are_rejected(
    replicate_fake: FakeReplicate, receiver: Receiver
) -> None:
    body = json.dumps({"id": "forged", "status": "succeeded"}).encode()
    headers = {
        "webhook-id": "msg_forged",
        "webhook-timestamp": str(int(replicate_fake.clock())),
        "webhook-signature": sign(body, "whsec_" + "QUJD" * 8, msg_id="msg_forged", timestamp=0),
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(receiver.url, data=body, headers=headers) as resp:
            assert resp.status == 400
        good = sign(
            body,
            replicate_fake.webhook_secret,
            msg_id="msg_forged",
            timestamp=int(headers["webhook-timestamp"]),
        )
        async with session.post(
            receiver.url, data=body + b" ", headers={**headers, "webhook-signature": good}
        ) as resp:
            assert resp.status == 400  # signed, but not this body
        async with session.post(
            receiver.url, data=body, headers={**headers, "webhook-signature": good}
        ) as resp:
            assert resp.status == 200
    assert [p.id for p in receiver.received] == ["forged"]


def test_shared_signature_test_vector_verifies() -> None:
    vector = json.loads(VECTOR.read_text())
    headers, body, secret = vector["headers"], vector["body"], vector["secret"]
    verify(headers, body, secret, tolerance=None)
    verify(headers, body.encode(), secret[len("whsec_") :], tolerance=None)
    assert (
        sign(
            body, secret, msg_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"])
        )
        == headers["webhook-signature"]
        == "v1," + vector["expected_signature_base64"]
    )
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(headers, body, secret)  # 2021: far outside the default 5 minutes
    with pytest.raises(WebhookVerificationError, match="no webhook signature matches"):
        verify(headers, body.replace("2432232314", "2432232315"), secret, tolerance=None)
