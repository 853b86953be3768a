"""Driving one prediction or training to a terminal status, under one deadline.

:func:`drive` starts a run (creates it, or takes one already created) and calls its
*advance* strategy until the run is terminal: :class:`Poll` sleeps and fetches; a webhook
waiter waits for the delivery instead. Whenever it is abandoned (the deadline passed, the
awaiting task was cancelled, the client was closed) the run is canceled on the server. The
caller gets control back within :data:`~replicate_async._inflight.FOREGROUND` seconds, in
any phase: a cancel still going on, or a create whose answer (and so whose id) has not
come yet, is finished in the background and drained by the client's ``aclose()``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from . import _check_numbers as check_numbers
from ._clock import Clock, deadline
from ._config import PollPolicy
from ._inflight import FOREGROUND, InFlight, bounded
from .exceptions import (
    ClientClosedError,
    ModelError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionError,
    PredictionTimeoutError,
)
from .models import Prediction, Training

__all__ = ["Advance", "Poll", "abandon", "drive", "outcome"]

logger = logging.getLogger("replicate_async")

R = TypeVar("R", Prediction, Training)

#: Given the latest unfinished state of a run, return a newer one (perhaps terminal).
Advance = Callable[[R], Awaitable[R]]


class Poll(Generic[R]):
    """The polling strategy: sleep on the clock with backoff and jitter, then fetch."""

    __slots__ = ("_clock", "_fetch", "_interval", "_policy")

    def __init__(
        self, fetch: Callable[[str], Awaitable[R]], policy: PollPolicy, clock: Clock
    ) -> None:
        self._fetch: Callable[[str], Awaitable[R]] = fetch
        self._policy = policy
        self._clock = clock
        self._interval = policy.initial

    async def __call__(self, run: R) -> R:
        """Sleep the next interval, then fetch ``run`` again."""
        policy = self._policy
        await self._clock.sleep(
            self._interval * random.uniform(1 - policy.jitter, 1 + policy.jitter)
        )
        self._interval = min(self._interval * policy.factor, policy.maximum)
        latest: R = await self._fetch(run.id)
        return latest


async def drive(
    *,
    start: Callable[[], Awaitable[R]] | R,
    advance: Advance[R],
    cancel: Callable[[str], Awaitable[R]],
    timeout: float | None,
    inflight: InFlight,
    cancel_on_abandon: bool = True,
) -> R:
    """Create the run (``start`` is a coroutine function) or take it (``start`` is the run),
    then ``advance`` it until terminal, within ``timeout`` seconds on the client's clock.

    Returns the terminal run, whatever its status. On the deadline it raises
    :class:`PredictionTimeoutError`, on task cancellation it re-raises
    :class:`asyncio.CancelledError`, and when the client is closed it raises
    :class:`~replicate_async.ClientClosedError`; in each case the run is canceled on the
    server first (unless ``cancel_on_abandon=False``).
    """
    timeout = check_numbers.seconds(timeout, "timeout")
    latest: R | None = None if callable(start) else start
    creating: asyncio.Future[R] | None = None
    with inflight.track():
        try:
            async with deadline(inflight.clock, timeout) as scope:
                if latest is None:
                    assert callable(start)
                    # Shielded: cancelled mid-create, we still learn the id and cancel it.
                    creating = asyncio.ensure_future(start())
                    latest = await asyncio.shield(creating)
                while not latest.done:
                    latest = await advance(latest)
                return latest
        except (asyncio.CancelledError, TimeoutError, ClientClosedError) as exc:
            expired = isinstance(exc, TimeoutError) and scope.expired()
            if cancel_on_abandon:
                latest = await abandon(inflight, cancel, latest, creating)
            if not expired:
                raise
            raise _timed_out(timeout, latest, creating, cancel_on_abandon) from None


async def abandon(
    inflight: InFlight,
    cancel: Callable[[str], Awaitable[R]],
    latest: R | None,
    creating: asyncio.Future[R] | None,
) -> R | None:
    """Cancel an abandoned run on the server; return its newest known state.

    A create that has not answered is canceled in the background once it does; a cancel
    is waited for at most :data:`FOREGROUND` seconds, then goes on in the background.
    """
    if latest is None:
        if creating is None or (
            creating.done() and (creating.cancelled() or creating.exception() is not None)
        ):
            return None
        if not creating.done():
            inflight.spawn(_cancel_when_created(creating, cancel), "canceling an abandoned run")
            return None
        latest = creating.result()
    if latest.done:
        return latest
    task = inflight.spawn(_cancel(cancel, latest.id), f"canceling {latest.id} on the server")
    if await bounded(inflight.clock, task, FOREGROUND) and task.exception() is None:
        result: R = task.result()
        return result
    return latest


async def _cancel(cancel: Callable[[str], Awaitable[R]], run_id: str) -> R:
    return await cancel(run_id)


async def _cancel_when_created(
    creating: asyncio.Future[R], cancel: Callable[[str], Awaitable[R]]
) -> None:
    try:
        run = await creating
    except Exception:  # nothing was created (or we cannot know it): nothing to cancel
        return
    if not run.done:
        await cancel(run.id)


def _timed_out(
    timeout: float | None,
    latest: Prediction | Training | None,
    creating: asyncio.Future[Any] | None,
    cancelled: bool,
) -> PredictionTimeoutError:
    what = "training" if isinstance(latest, Training) else "prediction"
    note = ""
    if cancelled and latest is not None:
        note = "; it was canceled on the server"
    elif cancelled and creating is not None and not creating.done():
        note = "; its create request had not returned: it is canceled when it does"
    return PredictionTimeoutError(f"the {what} did not finish within {timeout}s{note}", latest)


def outcome(run: Prediction | Training) -> Any:
    """The output of a succeeded run, or the matching :class:`PredictionError`."""
    status = run.status
    if status == "succeeded":
        return run.output
    what = "training" if isinstance(run, Training) else "prediction"
    if status == "failed":
        raise ModelError(f"{what} {run.id} failed: {run.error}", run)
    if status == "canceled":
        raise PredictionCanceledError(f"{what} {run.id} was canceled", run)
    if status == "aborted":
        raise PredictionAbortedError(
            f"{what} {run.id} was aborted: its deadline passed before it started", run
        )
    raise PredictionError(f"{what} {run.id} ended with status {status!r}", run)
