"""Scripted runs: "hold / fail / cancel / complete the n-th create" rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ._behaviours import ModelBehaviour
from ._records import FakePrediction
from ._runner import Runner
from ._util import check_json_value, dumps

__all__ = ["MAX_OUTPUT_DEPTH", "Action", "ScriptRule", "apply_scripts", "check_output"]

#: The deepest output the fake stores: every listing and GET must still encode it.
MAX_OUTPUT_DEPTH = 512

Action = Literal["hold", "fail", "cancel", "complete"]
ACTIONS: tuple[Action, ...] = ("hold", "fail", "cancel", "complete")


@dataclass(eq=False)
class ScriptRule:
    """What to do to the ``nth`` matching prediction created from now on.

    ``model`` (``owner/name``) narrows which creates count (``None``: every one).
    ``hold`` keeps the run ``processing`` until ``fake.release(id)`` (or a
    ``complete``/``fail``/``cancel``); ``fail`` makes it fail with ``error`` as a run
    would; ``cancel`` cancels it as soon as it is created; ``complete`` ends it
    ``succeeded`` at once (with ``output``, if given). ``applied_to`` is the prediction
    id it hit, once it did.
    """

    action: Action
    nth: int = 1
    model: str | None = None
    output: Any = None
    error: str = "Prediction failed for an unknown reason"
    applied_to: str | None = None
    _seen: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if isinstance(self.nth, bool) or not isinstance(self.nth, int) or self.nth < 1:
            raise ValueError("nth must be an integer of at least 1 (1: the next create)")
        check_output(self.output)


def check_output(output: Any) -> None:
    """A ``ValueError`` unless ``output`` is JSON the fake can store and answer with (in a
    prediction, and in every listing that shows it)."""
    try:
        reason = check_json_value(output, MAX_OUTPUT_DEPTH)
        if reason is None:
            dumps(output)
    except (TypeError, ValueError, RecursionError) as exc:
        reason = f"not JSON ({type(exc).__name__})"
    if reason is not None:
        raise ValueError(f"output cannot be stored: {reason}")


def _matching(rules: list[ScriptRule], prediction: FakePrediction) -> list[ScriptRule]:
    hits = []
    for rule in list(rules):
        if rule.model is not None and rule.model != prediction.model:
            continue
        rule._seen += 1
        if rule._seen == rule.nth:
            rule.applied_to = prediction.id
            rules.remove(rule)
            hits.append(rule)
    return hits


def before_start(rules: list[ScriptRule], prediction: FakePrediction) -> list[ScriptRule]:
    """Count a new create; adjust its behaviour for ``fail`` rules; return the rules hit."""
    hits = _matching(rules, prediction)
    for rule in hits:
        if rule.action == "fail":
            behaviour = prediction.behaviour or ModelBehaviour(duration=0.0)
            prediction.behaviour = dataclasses.replace(behaviour, outcome="fail", error=rule.error)
    return hits


async def apply_scripts(runner: Runner, prediction: FakePrediction, hits: list[ScriptRule]) -> None:
    """Apply the rules :func:`before_start` returned, once the run has started."""
    for rule in hits:
        if rule.action == "hold":
            runner.hold(prediction)
        elif rule.action == "cancel":
            await runner.cancel(prediction)
        elif rule.action == "complete":
            await runner.settle(prediction, "succeeded", output=rule.output)
