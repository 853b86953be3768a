"""The one notion of time the client uses: retries, polling, reconnects, throttling, deadlines.

Everything in the SDK that waits or measures elapsed time goes through a :class:`Clock`
taken from :attr:`ClientConfig.clock <replicate_async.ClientConfig.clock>`. Production uses
:data:`SYSTEM_CLOCK` (the event loop's monotonic time and :func:`asyncio.sleep`); tests pass a
virtual clock (e.g. :class:`replicate_async.testing.ManualClock`) so deadline and back-off
tests run on virtual time, with no wall-clock windows to flake on a loaded machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "SystemClock",
    "current_deadline",
    "deadline",
    "without_deadline",
]

#: The innermost :func:`deadline`'s end, on its clock's ``monotonic()`` scale.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "replicate_async_deadline", default=None
)


def current_deadline() -> float | None:
    """When the innermost enclosing :func:`deadline` expires (``None``: no deadline).

    The request path reads it, so retries of a 429 inside ``run(timeout=...)`` keep
    queueing until the run's own deadline rather than the retry policy's budget.
    """
    return _DEADLINE.get()


def without_deadline() -> contextvars.Context:
    """A copy of the current context with no :func:`deadline`: for work that outlives its
    caller's deadline (a server-side cancel must be retried past the run's own end)."""
    context = contextvars.copy_context()
    context.run(_DEADLINE.set, None)
    return context


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time and a way to wait on it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock (``<= 0``: yield once)."""
        ...


class SystemClock:
    """Real time: the running loop's clock and :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        """The running event loop's time (``time.monotonic`` outside a loop)."""
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            import time

            return time.monotonic()

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """:func:`asyncio.sleep`, never negative (its own coroutine: no layer more)."""
        return asyncio.sleep(seconds if seconds > 0 else 0)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The default clock.
SYSTEM_CLOCK = SystemClock()


@contextlib.asynccontextmanager
async def deadline(clock: Clock, seconds: float | None) -> AsyncIterator[asyncio.Timeout]:
    """Like :func:`asyncio.timeout`, but the time limit runs on ``clock``.

    On the system clock this is exactly ``asyncio.timeout(seconds)``. On another clock a
    watcher task sleeps ``seconds`` on it, then makes the :class:`asyncio.Timeout` expire
    at once, so cancellation, ``expired()`` and the ``TimeoutError`` are asyncio's own.
    """
    if seconds is None:
        async with asyncio.timeout(None) as scope:
            yield scope
        return
    end = clock.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(end if outer is None else min(outer, end))
    try:
        if isinstance(clock, SystemClock):
            async with asyncio.timeout(seconds) as scope:
                yield scope
            return
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as scope:

            async def expire() -> None:
                await clock.sleep(seconds)
                scope.reschedule(loop.time())

            watcher = loop.create_task(expire())
            try:
                yield scope
            finally:
                watcher.cancel()
    finally:
        _DEADLINE.reset(token)
