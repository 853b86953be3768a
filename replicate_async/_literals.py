"""The enumerated parameter values of the API, as ``Literal`` types for type checkers.

The SDK still checks the values at run time (a clear :class:`InvalidArgumentError`), for
callers without a type checker.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ModelSortBy",
    "PredictionSource",
    "SortDirection",
    "Status",
    "Visibility",
    "WebhookEvent",
]

Status = Literal["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
"""The prediction and training statuses known today. ``Prediction.status`` and
``Training.status`` stay ``str`` at run time: a status Replicate adds later passes through
unchanged (and an unknown status with ``completed_at`` set counts as done)."""

WebhookEvent = Literal["start", "output", "logs", "completed"]
"""When a webhook is sent (``webhook_events_filter``)."""

ModelSortBy = Literal["model_created_at", "latest_version_created_at"]
"""How ``models.list`` sorts."""

SortDirection = Literal["asc", "desc"]
"""Ascending or descending."""

Visibility = Literal["public", "private"]
"""Who can see a model."""

PredictionSource = Literal["web"]
"""``predictions.list(source=...)``: only predictions made on the website."""


def _document() -> None:
    """Give the exported aliases their docstrings at run time too (``help()``, doc checks);
    each ``Literal`` is a cached object of its own values, so this only labels it."""
    docs = {
        "Status": "Prediction and training statuses known today (fields stay ``str``).",
        "WebhookEvent": "When a webhook is sent (``webhook_events_filter``).",
    }
    for name, doc in docs.items():
        object.__setattr__(globals()[name], "__doc__", doc)


_document()
