"""``webhooks.unwrap``: verify and parse a delivery in one call, the secret read from
``REPLICATE_WEBHOOK_SECRET``; deliveries sent by the fake to a real local server."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp import web

from replicate_async import (
    AsyncReplicate,
    InvalidArgumentError,
    Prediction,
    Training,
    WebhookVerificationError,
)
from replicate_async.testing import FakeReplicate
from replicate_async.webhooks import sign, unwrap

from .conftest import serve

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_unwrap_reads_the_secret_from_the_environment(
    replicate_fake: FakeReplicate, client: AsyncReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_WEBHOOK_SECRET", replicate_fake.webhook_secret)
    received: list[Prediction] = []
    rejected: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        try:
            received.append(unwrap(request.headers, await request.read()))
        except WebhookVerificationError as exc:
            rejected.append(str(exc))
            return web.Response(status=400)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with serve(app) as origin:
        output = await client.run(
            "fake/upper",
            input={"text": "hi"},
            webhook=f"{origin}/hook",
            webhook_events_filter=["completed"],
        )
        await replicate_fake.drain_webhooks()
    assert rejected == []
    (prediction,) = received
    assert isinstance(prediction, Prediction)
    assert (prediction.status, prediction.output) == ("succeeded", output)


def _delivery(body: bytes, secret: str = SECRET, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    signature = sign(body, secret, msg_id="msg_1", timestamp=stamp)
    return {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(stamp), "Webhook-Signature": signature}


def test_unwrap_types_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)
    body = json.dumps({"id": "t1", "status": "succeeded", "destination": "a/b"}).encode()
    with pytest.raises(InvalidArgumentError, match="REPLICATE_WEBHOOK_SECRET"):
        unwrap(_delivery(body), body)
    training = unwrap(_delivery(body), body, SECRET, into=Training)
    assert isinstance(training, Training)
    assert training.destination == "a/b"
    monkeypatch.setenv("REPLICATE_WEBHOOK_SECRET", SECRET)
    assert unwrap(_delivery(body), body).id == "t1"
    # An explicit secret wins over the environment's.
    other = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    with pytest.raises(WebhookVerificationError, match="signature"):
        unwrap(_delivery(body), body, other)
    with pytest.raises(WebhookVerificationError, match="too old"):
        unwrap(_delivery(body, stamp=int(time.time()) - 3600), body)
    with pytest.raises(WebhookVerificationError, match="not a valid Prediction"):
        unwrap(_delivery(b"[1]"), b"[1]")
    with pytest.raises(WebhookVerificationError, match="signature"):
        unwrap(_delivery(body), body.replace(b"t1", b"t2"))
