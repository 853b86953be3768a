"""The built-in runnable models: what each one logs and outputs, step by step."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "KINDS",
    "PNG_BYTES",
    "ModelBehaviour",
    "Plan",
    "make_plan",
]

# A valid 1x1 transparent PNG: the "image" every fake image model generates.
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()

Outcome = Literal["succeed", "fail"]
StreamKind = Literal["text", "file"]

KINDS = ("echo", "upper", "hello", "tokens", "image", "fail", "slow")
"""Behaviour kinds a seeded model can have (see the ``fake/*`` models)."""


@dataclass(frozen=True, slots=True)
class ModelBehaviour:
    """How a model runs in the fake.

    - ``duration``: seconds spent ``processing`` (``0`` finishes at once but still passes
      through every status); ``None`` uses the server default for the model.
    - ``queue_time``: seconds spent ``starting`` before processing begins.
    - ``outcome``: ``"succeed"`` or ``"fail"`` (the latter ends ``failed`` with ``error``).
    - ``error``: the error string of a failed run.
    """

    duration: float | None = None
    queue_time: float = 0.0
    outcome: Outcome = "succeed"
    error: str = "Prediction failed for an unknown reason"


@dataclass(slots=True)
class Plan:
    """The scripted run of one prediction: steps spread evenly over the duration."""

    steps: list[tuple[Literal["log", "output"], Any]]
    list_output: bool
    stream: StreamKind
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def _tokens(prompt: str, limit: int) -> list[str]:
    return re.findall(r"\s*\S+", prompt)[:limit] or ["..."]


def make_plan(
    kind: str, inputs: dict[str, Any], *, file_url: str, sync: bool, behaviour: ModelBehaviour
) -> Plan:
    """Script a run of a ``kind`` model for ``inputs``.

    ``file_url`` is the URL template (with ``{i}``) image outputs are served from; in sync
    mode (``Prefer: wait``) images are inline ``data:`` URLs, as the real API does.
    """
    logs: list[tuple[Literal["log", "output"], Any]] = [("log", f"Running {kind} model")]
    plan: Plan
    if kind == "tokens":
        prompt = str(inputs.get("prompt", inputs.get("text", "")))
        max_tokens = inputs.get("max_tokens", 128)
        limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 128
        toks = _tokens(prompt, limit)
        plan = Plan([*logs, *(("output", t) for t in toks)], list_output=True, stream="text")
        plan.metrics = {
            "input_token_count": len(_tokens(prompt, 1 << 30)),
            "output_token_count": len(toks),
        }
    elif kind == "image":
        count = inputs.get("num_outputs", 1)
        count = count if isinstance(count, int) and 1 <= count <= 4 else 1
        urls = [PNG_DATA_URL if sync else file_url.format(i=i) for i in range(count)]
        steps = [*logs, ("log", f"Generating {count} image(s)"), *(("output", u) for u in urls)]
        plan = Plan(steps, list_output=True, stream="file")
        plan.metrics = {"image_count": count}
    elif kind == "upper":
        text = str(inputs.get("text", ""))
        plan = Plan([*logs, ("output", text.upper())], list_output=False, stream="text")
    elif kind == "hello":
        text = str(inputs.get("text", ""))
        plan = Plan([*logs, ("output", f"hello {text}")], list_output=False, stream="text")
    elif kind == "fail":
        message = inputs.get("error")
        error = message if isinstance(message, str) and message else "Something went wrong"
        steps = [*logs, ("log", "Traceback (most recent call last):"), ("log", error)]
        return Plan(steps, list_output=False, stream="text", error=error)
    elif kind == "slow":
        text = inputs.get("text", "done")
        plan = Plan([*logs, ("output", text)], list_output=False, stream="text")
    else:  # echo and anything unknown
        plan = Plan([*logs, ("output", dict(inputs))], list_output=False, stream="text")
    if behaviour.outcome == "fail":
        plan.error = behaviour.error
        plan.steps.append(("log", behaviour.error))
    return plan


def sse_text(value: Any) -> str:
    """The SSE ``data`` text for one output value (strings as-is, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
