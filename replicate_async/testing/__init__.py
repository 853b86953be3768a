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
``replicate_fake`` and ``replicate_fake_env`` fixtures; ``python -m
replicate_async.testing`` (or ``replicate-async fake-server``) serves one from a shell.

The names below are imported on first use, so importing this package (as the pytest
plugin does in every test run) costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._behaviours import ModelBehaviour
    from ._clock import Clock, ManualClock
    from ._faults import Fault, Faults
    from ._log import RecordedRequest
    from ._options import DEFAULT_TOKEN, DEFAULT_WEBHOOK_SECRET, FakeOptions
    from ._records import TERMINAL, FakePrediction, FileObject
    from ._script import ScriptRule
    from ._serve import serve
    from ._server import FakeReplicate
    from ._webhooks import WebhookDelivery, sign_webhook, verify_webhook

_WHERE = {
    "DEFAULT_TOKEN": "._options",
    "DEFAULT_WEBHOOK_SECRET": "._options",
    "TERMINAL": "._records",
    "Clock": "._clock",
    "FakeOptions": "._options",
    "FakePrediction": "._records",
    "FakeReplicate": "._server",
    "Fault": "._faults",
    "Faults": "._faults",
    "FileObject": "._records",
    "ManualClock": "._clock",
    "ModelBehaviour": "._behaviours",
    "RecordedRequest": "._log",
    "ScriptRule": "._script",
    "WebhookDelivery": "._webhooks",
    "serve": "._serve",
    "sign_webhook": "._webhooks",
    "verify_webhook": "._webhooks",
}

__all__ = [
    "Clock",
    "DEFAULT_TOKEN",
    "DEFAULT_WEBHOOK_SECRET",
    "FakeOptions",
    "FakePrediction",
    "FakeReplicate",
    "Fault",
    "Faults",
    "FileObject",
    "ManualClock",
    "ModelBehaviour",
    "RecordedRequest",
    "ScriptRule",
    "TERMINAL",
    "WebhookDelivery",
    "serve",
    "sign_webhook",
    "verify_webhook",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
