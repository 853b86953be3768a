"""The store protocol: the few operations a batch ledger needs, so that SQLite, Redis (and
later Postgres) can each hold one.

Every operation is atomic on its own. Claims and updates name the worker (``owner``) that
holds the item; an update from a worker whose claim was taken over is refused (returns
``False``), so a slow or presumed-dead worker can never overwrite the new holder's record.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from ._items import BatchItem, ItemState, LedgerStats

__all__ = ["SETTABLE", "BatchStore", "Fields"]

#: Item fields an update may set: ``state``, ``prediction_id``, ``owner``, ``lease_until``,
#: ``started_at``, ``finished_at``, ``output`` (JSON text), ``saved`` (JSON text),
#: ``error``, ``predict_time``.
Fields = Mapping[str, Any]
SETTABLE = frozenset(
    {
        "state",
        "prediction_id",
        "owner",
        "lease_until",
        "started_at",
        "finished_at",
        "output",
        "saved",
        "error",
        "predict_time",
    }
)


class BatchStore(Protocol):
    """Where a batch's ledger lives."""

    async def open(self, meta: Mapping[str, str]) -> dict[str, str]:
        """Create the ledger if new (recording ``meta``); return the ledger's meta, whose
        values win over ``meta`` for a ledger that already existed."""
        ...

    async def set_meta(self, name: str, value: str) -> None:
        """Record one meta value (e.g. that the batch was canceled)."""
        ...

    async def add(self, rows: Sequence[tuple[str, str]]) -> int:
        """Add ``(key, input JSON)`` rows as pending; a key already present is left as it
        is. Returns how many were new."""
        ...

    async def get(self, key: str) -> BatchItem | None:
        """One item, or ``None`` when the ledger has no such key."""
        ...

    async def claim(
        self, owner: str, now: float, lease: float, limit: int, *, key: str | None = None
    ) -> list[BatchItem]:
        """Move up to ``limit`` pending items (only ``key``, if given), oldest first, to
        ``creating``: the intent to create, recorded (with ``attempts + 1`` and
        ``intent_at = now``) before any create is sent, held by ``owner`` until
        ``now + lease``."""
        ...

    async def update(
        self, key: str, fields: Fields, *, owner: str | None = None, state: str | None = None
    ) -> bool:
        """Set ``fields`` on one item, only if ``owner`` (when given) still holds it and it
        is in ``state`` (when given); ``False`` when not (taken over, canceled...)."""
        ...

    async def get_meta(self) -> dict[str, str]:
        """The ledger's meta."""
        ...

    async def renew(self, owner: str, until: float) -> None:
        """Extend every claim of ``owner`` to ``until``."""
        ...

    async def release(self, owner: str) -> None:
        """End every claim of ``owner`` now (its items stay as they are, for the next
        worker to take over and re-attach or reconcile)."""
        ...

    async def owners(self) -> set[str]:
        """The workers holding in-flight items."""
        ...

    async def take_over(
        self,
        owner: str,
        now: float,
        lease: float,
        dead: Collection[str],
        *,
        key: str | None = None,
    ) -> list[BatchItem]:
        """Claim, for ``owner``, every in-flight (``creating``/``running``) item (only
        ``key``, if given) whose lease has expired or whose holder is in ``dead``."""
        ...

    async def move(self, states: Collection[ItemState], to: ItemState, now: float) -> int:
        """Move every item in ``states`` to ``to`` (a retry: to pending, releasing any
        claim; a cancel: to canceled, finished now); returns how many."""
        ...

    async def known_predictions(self, ids: Collection[str]) -> set[str]:
        """Which of these prediction ids some item of the ledger already holds."""
        ...

    async def scan(
        self, states: Collection[ItemState] | None, after: int, limit: int
    ) -> tuple[list[BatchItem], int | None]:
        """Up to ``limit`` items (in ``states``, or all; a page may hold fewer) in the order
        they were added, after position ``after``; returns the page and the position to
        continue from (``None``: there is no more)."""
        ...

    async def stats(self) -> LedgerStats:
        """Counts by state, first intent, last finish, predict seconds."""
        ...

    async def aclose(self) -> None:
        """Release the store's resources."""
        ...
