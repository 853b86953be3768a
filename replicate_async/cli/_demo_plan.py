"""The demo's plans (which models and inputs each step uses) and its report."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["DemoPlan", "DemoReport", "fake_plan", "prepare_fake", "remote_plan"]

_PROMPT = (
    "Once upon a time an asyncio client streamed every token the moment it was generated, "
    "cancelled what it no longer needed, and never paid twice for the same prediction."
)


@attrs.frozen
class DemoPlan:
    """Which models and inputs each step uses (the fake's, or one real model's)."""

    catalogue_pages: int | None
    wait_model: str
    wait_input: dict[str, Any]
    stream_model: str
    stream_input: dict[str, Any]
    fanout_model: str
    fanout_inputs: list[dict[str, Any]]
    fanout_key: str
    concurrency: int
    slow_model: str
    slow_input: dict[str, Any]
    slow_timeout: float
    note: str = ""
    settle: float = 10.0
    """Seconds a batch waits after a failed create before asking the server about it."""


@attrs.define
class DemoReport:
    """What happened, for the summary table (and for tests)."""

    models: int = 0
    pages: int = 0
    predictions: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    tokens: int = 0
    duplicates: int = 0
    server_predictions: int = 0
    fanout_requests: int = 0
    fanout_predictions: int = 0
    retries: int = 0
    requests: int = 0
    failures: dict[str, int] = attrs.field(factory=dict)
    wall: float = 0.0


def fake_plan(count: int = 300, concurrency: int = 50) -> DemoPlan:
    """The plan against the embedded fake: its ``fake/*`` models."""
    return DemoPlan(
        catalogue_pages=None,
        wait_model="fake/upper",
        wait_input={"text": "hello from replicate_async"},
        stream_model="fake/tokens",
        stream_input={"prompt": _PROMPT},
        fanout_model="fake/echo",
        fanout_inputs=[{"text": f"item-{i:04d}"} for i in range(count)],
        fanout_key="text",
        concurrency=concurrency,
        slow_model="fake/slow",
        slow_input={"text": "this takes a minute"},
        slow_timeout=1.5,
        settle=0.5,
        note="faults injected: 1x 503 on a page, 3x 429 on creates, 2x 500 and "
        "2x dropped answers on creates",
    )


def remote_plan(model: str, count: int = 3, concurrency: int = 50) -> DemoPlan:
    """The plan against a real server: every step runs ``model`` with a short prompt."""
    return DemoPlan(
        catalogue_pages=2,
        wait_model=model,
        wait_input={"prompt": "Say hello in five words."},
        stream_model=model,
        stream_input={"prompt": "Write one sentence about asynchronous programming."},
        fanout_model=model,
        fanout_inputs=[{"prompt": f"Reply with the number {i}."} for i in range(count)],
        fanout_key="prompt",
        concurrency=max(1, min(concurrency, count)),
        slow_model=model,
        slow_input={"prompt": "Write a very long story about the sea."},
        slow_timeout=2.0,
    )


def prepare_fake(fake: Any) -> None:
    """Seed the fake for :func:`fake_plan`: 500 more models, timings, and a few faults."""
    fake.add_models(500)
    fake.set_model_behaviour("fake/tokens", duration=2.0)
    fake.set_model_behaviour("fake/echo", duration=0.25)
    fake.faults.add("/v1/models", method="GET", status=503, times=1)
    create = "/v1/models/fake/echo/predictions"
    fake.faults.add(create, method="POST", status=429, retry_after=1, times=3)
    fake.faults.add(create, method="POST", status=500, times=2)
    fake.faults.add(create, method="POST", drop_connection="after_body", times=2)
