"""An embedded, stateful, fault-injectable fake of Replicate's HTTP API, for tests.

::

    from replicate_async.testing import FakeReplicate

    async with FakeReplicate() as fake:
        async with fake.client() as client:
            prediction = await client.predictions.create(
                version="fake/echo:...", input={"text": "hi"}
            )

It serves all 37 operations of Replicate's OpenAPI document under ``/v1`` on
``127.0.0.1`` (a free port), plus prediction SSE streams (``/v1/streams/{id}``) and
output files (``/delivery/...``). Built-in models: ``fake/echo``, ``fake/upper``,
``fake/tokens``, ``fake/image``, ``fake/fail``, ``fake/slow``, the official
``meta/meta-llama-3-8b-instruct`` and ``black-forest-labs/flux-schnell``, and more.

The pytest plugin (``replicate_async.testing.pytest_plugin``) provides the
``replicate_fake`` fixture; ``python -m replicate_async.testing`` serves one from a shell.
"""

from ._behaviours import ModelBehaviour
from ._clock import Clock, ManualClock
from ._context import DEFAULT_TOKEN, DEFAULT_WEBHOOK_SECRET, FakeOptions
from ._faults import Fault, Faults
from ._records import TERMINAL
from ._serve import serve
from ._server import FakeReplicate, RecordedRequest
from ._webhooks import WebhookDelivery, sign_webhook, verify_webhook

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_WEBHOOK_SECRET",
    "TERMINAL",
    "Clock",
    "FakeOptions",
    "FakeReplicate",
    "Fault",
    "Faults",
    "ManualClock",
    "ModelBehaviour",
    "RecordedRequest",
    "WebhookDelivery",
    "serve",
    "sign_webhook",
    "verify_webhook",
]
