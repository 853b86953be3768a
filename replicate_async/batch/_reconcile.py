"""Reconciling creates whose answer never reached the ledger: was a prediction made?

Replicate has no idempotency key. What it does have: ``GET /predictions?created_after=``
lists every prediction of the account since a moment, and each prediction echoes its
``webhook`` URL (query included) and its exact ``input``. An item whose intent was
recorded but whose prediction id was not is looked for there:

- by its key, carried in the webhook URL's query (when the batch has a webhook base), or
- by the exact model/version and input (canonical JSON), among predictions no other item
  holds.

One match: the prediction is adopted (no second create). No match, once the create can no
longer be on its way (``settle`` seconds after the intent): provably not created, so it is
created again. Two items that would claim the same prediction, or a listing that failed:
unresolved, reported, never silently re-created.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from ..models import Prediction
from ._items import BatchItem, canonical

__all__ = ["KEY_PARAM", "Verdict", "Target", "verdicts"]

#: The webhook query parameter that carries an item's key.
KEY_PARAM = "replicate_batch_key"
#: Seconds listed before the earliest intent, for clock skew between us and the server.
SKEW = 60.0


@attrs.frozen
class Target:
    """What the batch creates on: an owner/name, and a version id when pinned."""

    model: str | None
    version: str | None

    def matches(self, prediction: Prediction) -> bool:
        """Whether the prediction was made on this target."""
        if self.version is not None and prediction.version != self.version:
            return False
        return self.model is None or prediction.model in (None, self.model)


@attrs.frozen
class Verdict:
    """What the server says about one item: ``adopt`` (this prediction), ``create``
    (provably not created), or ``unresolved`` (why)."""

    key: str
    action: str
    prediction: Prediction | None = None
    why: str = ""


def webhook_key(url: str | None) -> str | None:
    """The key carried in a webhook URL, if any."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get(KEY_PARAM)
    return values[-1] if values else None


def verdicts(
    items: Sequence[BatchItem],
    candidates: Sequence[Prediction],
    target: Target,
    *,
    by_key: bool,
) -> list[Verdict]:
    """Match ``items`` (all caught between intent and id) against ``candidates`` (the
    predictions created since their intents that no other item holds)."""
    found: dict[str, list[Prediction]] = {item.key: [] for item in items}
    by_input: dict[str, list[str]] = {}
    for item in items:
        by_input.setdefault(canonical(dict(item.input)), []).append(item.key)
    for prediction in candidates:
        if not target.matches(prediction):
            continue
        carried = webhook_key(prediction.webhook)
        if by_key:
            if carried is not None and carried in found:
                found[carried].append(prediction)
            continue
        keys = by_input.get(canonical(prediction.input or {}), [])
        for key in keys:
            found[key].append(prediction)
    out: list[Verdict] = []
    for item in items:
        matches = sorted(found[item.key], key=_created)
        twins = len(by_input[canonical(dict(item.input))]) if not by_key else 1
        if twins > 1 and matches:
            why = f"{twins} items share this exact input, so a prediction cannot be told apart"
            out.append(Verdict(item.key, "unresolved", why=why))
        elif matches:
            # More than one: an earlier run already paid twice; adopt the first, say so.
            out.append(Verdict(item.key, "adopt", matches[0], why=f"{len(matches)} found"))
        else:
            out.append(Verdict(item.key, "create"))
    return out


def _created(prediction: Prediction) -> Any:
    return prediction.created_at or datetime.min.replace(tzinfo=UTC)


def since(items: Sequence[BatchItem]) -> datetime:
    """The ``created_after`` bound for these items' intents."""
    earliest = min(item.intent_at or time.time() for item in items)
    return datetime.fromtimestamp(earliest - SKEW, UTC)
