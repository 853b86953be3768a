"""The ledger's values: an item's states, the item itself, and the batch's status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, get_args

import attrs

__all__ = [
    "FINISHED",
    "IN_FLIGHT",
    "BatchItem",
    "BatchStatus",
    "ItemState",
    "Tally",
    "canonical",
]

ItemState = Literal[
    "pending", "creating", "running", "succeeded", "failed", "canceled", "unresolved"
]
"""Where an item is: ``pending`` (not sent), ``creating`` (the intent to create is
recorded, the prediction id not yet), ``running`` (its prediction id is recorded),
``succeeded``/``failed``/``canceled`` (finished), or ``unresolved``: a create whose fate
the server could not prove either way (see :meth:`Batch.retry`)."""

STATES: tuple[ItemState, ...] = get_args(ItemState)
IN_FLIGHT: tuple[ItemState, ...] = ("creating", "running")
FINISHED: tuple[ItemState, ...] = ("succeeded", "failed", "canceled")


def canonical(value: Any) -> str:
    """The one JSON spelling of a value: sorted keys, no spaces (for storing and matching)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@attrs.frozen
class BatchItem:
    """One input of a batch, as the ledger has it.

    ``key`` is the caller's id. ``attempts`` counts creates sent (an adopted prediction
    is not a new attempt). Times are Unix seconds: ``intent_at`` when the latest create
    was decided (recorded before it was sent), ``started_at`` when its prediction id was
    recorded, ``finished_at`` when it ended. ``output`` is the prediction's output (JSON),
    ``saved`` the files it was written to, ``error`` why it failed or is unresolved.
    """

    key: str
    input: Mapping[str, Any]
    state: ItemState = "pending"
    attempts: int = 0
    prediction_id: str | None = None
    owner: str | None = None
    lease_until: float | None = None
    intent_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    output: Any = None
    saved: tuple[str, ...] = ()
    error: str | None = None
    predict_time: float | None = None

    @property
    def ok(self) -> bool:
        """True when the item's prediction succeeded."""
        return self.state == "succeeded"

    def to_json(self) -> dict[str, Any]:
        """The exported line: keyed by the caller's id."""
        line: dict[str, Any] = {
            "key": self.key,
            "state": self.state,
            "prediction_id": self.prediction_id,
            "attempts": self.attempts,
            "output": self.output,
        }
        if self.saved:
            line["saved"] = list(self.saved)
        if self.error is not None:
            line["error"] = self.error
        if self.predict_time is not None:
            line["predict_time"] = self.predict_time
        return line


@attrs.define
class Tally:
    """What a batch's runs in this process did besides finishing items (``batch.tally``):
    inputs ``added`` to the ledger (the others were there already), running predictions
    ``reattached`` by id, lost creates found on the server and ``adopted``, creates sent
    again after the server showed none was made (``recreated``), items left
    ``unresolved``."""

    added: int = 0
    reattached: int = 0
    adopted: int = 0
    recreated: int = 0
    unresolved: int = 0


@attrs.frozen
class LedgerStats:
    """What a store knows in aggregate (for :class:`BatchStatus`)."""

    counts: Mapping[str, int]
    first_intent: float | None = None
    last_finish: float | None = None
    predict_time: float = 0.0


@attrs.frozen
class BatchStatus:
    """Counts by state, rate, ETA and spend of a batch (``batch.status()``).

    ``rate`` is items finished per second since the first create; ``eta`` the seconds
    left at that rate (``None`` until something finished); ``predict_time`` the sum of
    the predictions' ``metrics.predict_time`` (what Replicate bills for), in seconds.
    """

    counts: Mapping[str, int]
    rate: float | None
    eta: float | None
    predict_time: float

    @property
    def total(self) -> int:
        """Items in the ledger."""
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Items finished (succeeded, failed or canceled)."""
        return sum(self.counts.get(state, 0) for state in FINISHED)

    @property
    def complete(self) -> bool:
        """True when nothing is pending, in flight or unresolved."""
        return self.done == self.total

    @classmethod
    def of(cls, stats: LedgerStats) -> BatchStatus:
        """The status from a store's aggregate."""
        counts: dict[str, int] = {state: int(stats.counts.get(state, 0)) for state in STATES}
        done = sum(counts[state] for state in FINISHED)
        rate: float | None = None
        eta: float | None = None
        if stats.first_intent is not None and stats.last_finish is not None and done:
            span = max(stats.last_finish - stats.first_intent, 1e-6)
            rate = done / span
            left = counts["pending"] + counts["creating"] + counts["running"]
            eta = left / rate
        return cls(counts=counts, rate=rate, eta=eta, predict_time=stats.predict_time)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "total": self.total,
            "done": self.done,
            "counts": dict(self.counts),
            "rate": self.rate,
            "eta": self.eta,
            "predict_time": self.predict_time,
        }

    def line(self) -> str:
        """A one-line human summary."""
        c = self.counts
        parts = [
            f"{self.done}/{self.total} done",
            f"{c.get('succeeded', 0)} succeeded",
            f"{c.get('failed', 0)} failed",
            f"{c.get('canceled', 0)} canceled",
            f"{c.get('running', 0) + c.get('creating', 0)} running",
            f"{c.get('pending', 0)} pending",
        ]
        if c.get("unresolved"):
            parts.append(f"{c['unresolved']} unresolved")
        if self.rate is not None:
            parts.append(f"{self.rate:.1f}/s")
        if self.eta is not None and self.eta > 0:
            parts.append(f"ETA {self.eta:.0f}s")
        if self.predict_time:
            parts.append(f"{self.predict_time:.1f} predict-s")
        return ", ".join(parts)
