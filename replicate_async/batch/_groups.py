"""Group commit for a ledger: the writes callers make in the same turn of the event loop
go to the store together (one SQLite transaction, one Redis pipeline), and each caller
resumes once its own write has landed.

A batch makes two or three small writes per item from ``concurrency`` tasks at once; sent
one by one, each pays its own commit or round trip. Grouped, they share it, and the order
in which callers submitted is the order in which they land.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["Groups", "Outcome"]

Op = TypeVar("Op")
#: One op's outcome: ``(True, result)`` or ``(False, the exception it raised)``.
Outcome = tuple[bool, Any]


class Groups(Generic[Op]):
    """Runs submitted ops in groups, in order.

    ``run`` runs one group and returns one :data:`Outcome` per op (an exception it raises
    instead goes to every caller of the group); ``cut`` says how many ops from the head
    of the queue may go in the next group (default: all of them).
    """

    def __init__(
        self,
        run: Callable[[list[Op]], Awaitable[Sequence[Outcome]]],
        *,
        cut: Callable[[deque[Op]], int] | None = None,
    ) -> None:
        self._run = run
        self._cut = cut
        self._ops: deque[Op] = deque()
        self._futures: deque[asyncio.Future[Any]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, op: Op) -> Any:
        """Run ``op`` in the next group; its result (or its exception)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._ops.append(op)
        self._futures.append(future)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future

    async def drain(self) -> None:
        """Wait until every op submitted so far has run."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            while self._ops:
                size = len(self._ops) if self._cut is None else self._cut(self._ops)
                ops = [self._ops.popleft() for _ in range(size)]
                futures = [self._futures.popleft() for _ in range(size)]
                try:
                    outcomes = await self._run(ops)
                    if len(outcomes) != size:
                        raise RuntimeError(f"{size} ops, {len(outcomes)} outcomes")
                except BaseException as exc:  # the group as a whole failed
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for future, (ok, value) in zip(futures, outcomes, strict=False):
                    if future.done():  # (its caller stopped waiting)
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._flusher = None
