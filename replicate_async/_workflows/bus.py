"""Where webhook deliveries meet the runs waiting for them.

A :class:`CompletionBus` de-duplicates deliveries, stores terminal predictions and wakes
whoever waits for them. :class:`MemoryBus` does it inside one process (the default of
:class:`~replicate_async.WebhookWaiter`); a shared one (e.g. on Redis) lets any instance
of a fleet receive the webhook for a run another instance is waiting on.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..exceptions import ClientClosedError, InvalidArgumentError

__all__ = ["CompletionBus", "MemoryBus"]


@runtime_checkable
class CompletionBus(Protocol):
    """De-duplicates webhook deliveries and hands terminal predictions to their waiters."""

    async def first_delivery(self, webhook_id: str) -> bool:
        """True the first time ``webhook_id`` is seen (fleet-wide), False for a repeat."""
        ...

    async def publish(self, prediction: Mapping[str, Any]) -> None:
        """Store a terminal prediction (for a while) and wake its waiters."""
        ...

    async def wait(self, prediction_id: str) -> Mapping[str, Any]:
        """The stored prediction at once, or wait for its publication."""
        ...

    async def aclose(self) -> None:
        """Release the bus; pending waits fail."""
        ...


class MemoryBus:
    """A :class:`CompletionBus` inside one process.

    Remembers the last ``max_remembered`` delivery ids, and the last ``max_buffered``
    predictions nobody was waiting for yet (a delivery can beat the create's response).
    """

    def __init__(self, *, max_buffered: int = 10_000, max_remembered: int = 10_000) -> None:
        if max_buffered < 1 or max_remembered < 1:
            raise InvalidArgumentError("max_buffered and max_remembered must be positive")
        self._max_buffered = max_buffered
        self._max_remembered = max_remembered
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._done: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[Mapping[str, Any]]]] = {}
        self._closed = False

    async def first_delivery(self, webhook_id: str) -> bool:
        """True the first time ``webhook_id`` is seen by this process."""
        if webhook_id in self._seen:
            self._seen.move_to_end(webhook_id)
            return False
        self._seen[webhook_id] = None
        if len(self._seen) > self._max_remembered:
            self._seen.popitem(last=False)
        return True

    async def publish(self, prediction: Mapping[str, Any]) -> None:
        """Wake the waiters of ``prediction["id"]``, or keep it for a later :meth:`wait`."""
        key = str(prediction.get("id", ""))
        futures = self._waiters.pop(key, None)
        if futures:
            for future in futures:
                if not future.done():
                    future.set_result(prediction)
            return
        self._done[key] = prediction
        self._done.move_to_end(key)
        while len(self._done) > self._max_buffered:
            self._done.popitem(last=False)

    async def wait(self, prediction_id: str) -> Mapping[str, Any]:
        """The published prediction, at once if it came already."""
        if self._closed:
            raise ClientClosedError("the completion bus is closed")
        found = self._done.pop(prediction_id, None)
        if found is not None:
            return found
        future: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(prediction_id, []).append(future)
        try:
            return await future
        finally:
            futures = self._waiters.get(prediction_id)
            if futures is not None and future in futures:
                futures.remove(future)
                if not futures:
                    del self._waiters[prediction_id]

    def waiting(self) -> int:
        """How many waits are pending."""
        return sum(len(futures) for futures in self._waiters.values())

    async def aclose(self) -> None:
        """Fail every pending wait with :class:`ClientClosedError`."""
        self._closed = True
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(ClientClosedError("the completion bus was closed"))
        self._waiters.clear()
