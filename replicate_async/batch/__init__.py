"""Durable batches: many predictions of one model, kept in a ledger that survives a crash.

::

    async with AsyncReplicate() as client:
        async for item in client.batch("owner/model", "inputs.jsonl", store="batch.db", key="id"):
            print(item.key, item.state, item.output)

See :class:`Batch` and the README's "Batches" section for the guarantees and their limits.
"""

from __future__ import annotations

from ._inputs import Inputs, KeyFunc
from ._items import BatchItem, BatchStatus, ItemState, Tally
from ._runner import Batch, open_store
from ._sqlite import SQLiteStore
from ._store import BatchStore

__all__ = [
    "Batch",
    "BatchItem",
    "BatchStatus",
    "BatchStore",
    "Inputs",
    "ItemState",
    "KeyFunc",
    "SQLiteStore",
    "Tally",
    "open_store",
]


def __getattr__(name: str) -> object:
    """``RedisStore`` is imported on first use (it needs the [redis] extra)."""
    if name == "RedisStore":
        from ._redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
