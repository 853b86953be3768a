"""Driving one prediction or training to a terminal status, under one deadline.

:func:`drive` starts a run (creates it, or takes one already created) and calls its
*advance* strategy until the run is terminal: :class:`Poll` sleeps and fetches; a webhook
waiter waits for the delivery instead. Whenever it is abandoned (the deadline passed, the
awaiting task was cancelled, the client was closed, any error) the run is canceled on the
server and the error raised names it: :class:`RunGuard` keeps that promise for every
workflow (``stream`` too). The
caller gets control back within :data:`~replicate_async._workflows.inflight.FOREGROUND` seconds, in
any phase: a cancel still going on, or a create whose answer (and so whose id) has not
come yet, is finished in the background and drained by the client's ``aclose()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .._checks import numbers as check_numbers
from .._clock import Clock, deadline
from .._config import PollPolicy
from .._core.session import CREATE_GATE, CreateGate
from ..exceptions import (
    ModelError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionError,
    PredictionTimeoutError,
    ReplicateError,
    RunAbandonedError,
)
from ..models import Prediction, Training
from .inflight import FOREGROUND, InFlight, bounded

__all__ = ["Advance", "OnCreated", "Poll", "RunGuard", "drive", "outcome", "timed_out"]

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
        jitter = policy.jitter
        await self._clock.sleep(
            self._interval * random.uniform(1 - jitter, 1 + jitter) if jitter else self._interval
        )
        self._interval = min(self._interval * policy.factor, policy.maximum)
        latest: R = await self._fetch(run.id)
        return latest


OnCreated = Callable[[Any], Any]
"""A caller's ``on_created``: called (and awaited, if it returns an awaitable) with the
run the moment its create returns, before the run is waited for."""


class RunGuard(Generic[R]):
    """One run, from before its create to its end: where every workflow keeps the promise.

    Once the create may have reached the server, however the workflow is left,
    :meth:`leave` cancels the run on the server (exactly once, in the background, unless
    ``cancel_on_abandon=False``) and names it on the error to raise. :meth:`abandon` is
    the cancelling part alone: the client's ``aclose()`` calls it for every run still
    held, so a run nobody awaits any more (a stream left by ``break``) is canceled before
    the pool closes. A create still queued for a connection when the run is abandoned is
    never sent. The client's run observers hear of the created run and of its end.
    """

    __slots__ = (
        "_announced",
        "_cancel",
        "_cancel_on_abandon",
        "_ended",
        "_ending",
        "_gate",
        "_on_created",
        "creating",
        "inflight",
        "latest",
    )

    def __init__(
        self,
        inflight: InFlight,
        cancel: Callable[[str], Awaitable[R]],
        *,
        cancel_on_abandon: bool = True,
        on_created: OnCreated | None = None,
    ) -> None:
        self.inflight = inflight
        self._cancel: Callable[[str], Awaitable[R]] = cancel
        self._cancel_on_abandon = cancel_on_abandon
        self._on_created = on_created
        #: The run as last seen (``None`` until its create answered).
        self.latest: R | None = None
        #: The create, while it is (or was) on its way.
        self.creating: asyncio.Future[R] | None = None
        self._gate: CreateGate | None = None
        self._ending: asyncio.Task[Any] | None = None
        self._announced = False
        self._ended = False

    async def create(self, start: Callable[[], Awaitable[R]]) -> R:
        """Send the create and return the run. Shielded: a caller cancelled mid-create
        still has the run canceled once its id comes."""
        gate = self._gate = CreateGate()
        context = contextvars.copy_context()
        context.run(CREATE_GATE.set, gate)  # the task's own context: its create obeys the gate
        made = context.run(start)  # a coroutine function's body runs in the task, not here
        self.inflight.hold(self)
        coroutine = made if inspect.iscoroutine(made) else _awaited(made)
        creating = self.creating = asyncio.get_running_loop().create_task(
            coroutine, context=context
        )
        run = await asyncio.shield(creating)
        self.latest = run
        if isinstance(run, Prediction):
            self._announced = True
            if self.inflight.observers:
                await self.inflight.created(run)
        if self._on_created is not None:
            told = self._on_created(run)
            if inspect.isawaitable(told):
                await told
        return run

    def take(self, run: R) -> R:
        """Guard a run created elsewhere (``wait``)."""
        self.latest = run
        self.inflight.hold(self)
        return run

    def seen(self, run: R) -> R:
        """Remember the run's newest state."""
        self.latest = run
        return run

    def abandon(self) -> asyncio.Task[Any] | None:
        """Cancel the run on the server, once (nothing if opted out, never created or
        already terminal); return the background task doing it, if any."""
        if self._ending is not None or self._ended:
            return self._ending
        if not self._cancel_on_abandon:
            return None  # the caller keeps the run going: its workflow settles it
        run_id, waits = self._to_cancel()
        if run_id is None and not waits and not self._announced:
            self._release()
            return None
        what = f"canceling {run_id} on the server" if run_id else "canceling an abandoned run"
        self._ending = self.inflight.spawn(self._end(run_id, waits), what)
        return self._ending

    def _to_cancel(self) -> tuple[str | None, bool]:
        """The id to cancel, or whether to wait for the create's answer to learn it."""
        latest, creating, gate = self.latest, self.creating, self._gate
        if latest is None and creating is not None and not creating.done():
            assert gate is not None
            gate.abandoned = True  # whatever happens, the create is not sent from now on
            if not gate.sent:
                creating.cancel()  # still queued (limiter or connection slot): never sent
                return None, False
            return None, True
        if latest is None and creating is not None and _created(creating):
            latest = self.latest = creating.result()
        if latest is None or latest.done:
            return None, False
        return latest.id, False

    async def _end(self, run_id: str | None, waits: bool) -> R | None:
        try:
            if waits:
                assert self.creating is not None
                try:
                    run = await self.creating
                except Exception:  # nothing was created (or we cannot know it)
                    return None
                self.latest = run
                run_id = None if run.done else run.id
            if run_id is not None:
                canceled: R = await self._cancel(run_id)
                self.latest = canceled
                return canceled
            return None
        finally:
            await self._settle()

    async def finish(self) -> None:
        """The workflow is done with the run, which ended normally."""
        if self._ending is None:
            await self._settle()

    async def close(self) -> None:
        """The workflow is left: abandon the run, waiting for its cancel at most
        :data:`FOREGROUND` seconds (it goes on in the background after that; a create
        still awaiting its answer is canceled in the background once it answers)."""
        task = self.abandon()
        if task is None:
            await self._settle()
        elif self.latest is not None:  # a create not answered yet is not waited for
            await bounded(self.inflight.clock, task, FOREGROUND)

    async def leave(self, exc: BaseException) -> BaseException:
        """The workflow is left by ``exc``: :meth:`close`, and return the error to raise,
        naming the run."""
        await self.close()
        return self.name(exc)

    def name(self, exc: BaseException) -> BaseException:
        """``exc``, carrying the run (a foreign error becomes a :class:`RunAbandonedError`)."""
        run = self.latest
        if run is None:
            return exc
        if isinstance(exc, ReplicateError):
            if exc.prediction is None:
                exc.prediction = run
            return exc
        if not isinstance(exc, Exception):
            return exc  # CancelledError, KeyboardInterrupt: re-raised as they are
        what = "training" if isinstance(run, Training) else "prediction"
        done = "" if run.done or not self._cancel_on_abandon else "; it was canceled on the server"
        error = RunAbandonedError(f"{what} {run.id} was left after {exc!r}{done}", run)
        error.__cause__ = exc
        return error

    def sent(self) -> bool:
        """Whether the create may have been sent."""
        return self._gate is None or self._gate.sent

    def _release(self) -> None:
        self._ended = True
        self.inflight.release(self)

    async def _settle(self) -> None:
        if self._ended and not self._announced:
            return
        announced, self._announced = self._announced, False
        self._release()
        if announced and self.latest is not None and self.inflight.observers:
            await self.inflight.settled(self.latest.id)


async def _awaited(awaitable: Awaitable[R]) -> R:
    """An awaitable that is not a coroutine, as one (what a task runs)."""
    return await awaitable


def _created(creating: asyncio.Future[Any]) -> bool:
    return creating.done() and not creating.cancelled() and creating.exception() is None


async def drive(
    *,
    start: Callable[[], Awaitable[R]] | R,
    advance: Advance[R],
    cancel: Callable[[str], Awaitable[R]],
    timeout: float | None,
    inflight: InFlight,
    cancel_on_abandon: bool = True,
    on_created: OnCreated | None = None,
) -> R:
    """Create the run (``start`` is a coroutine function) or take it (``start`` is the run),
    then ``advance`` it until terminal, within ``timeout`` seconds on the client's clock.

    Returns the terminal run, whatever its status. However it is left otherwise, the run
    is canceled on the server first (unless ``cancel_on_abandon=False``) and the error
    names it (see :class:`RunGuard`): on the deadline :class:`PredictionTimeoutError`, on
    task cancellation :class:`asyncio.CancelledError` again, when the client is closed
    :class:`~replicate_async.ClientClosedError`, and any other error with ``.prediction``.
    """
    timeout = check_numbers.seconds(timeout, "timeout")
    guard = RunGuard(inflight, cancel, cancel_on_abandon=cancel_on_abandon, on_created=on_created)
    scope: asyncio.Timeout | None = None
    try:
        with inflight.track():
            if timeout is None:  # no deadline scope to enter and leave, nor a layer more
                latest = await guard.create(start) if callable(start) else guard.take(start)
                while not latest.done:
                    latest = guard.seen(await advance(latest))
            else:
                async with deadline(inflight.clock, timeout) as scope:
                    latest = await _advanced(guard, start, advance)
        await guard.finish()
        return latest
    except BaseException as exc:
        error = await guard.leave(exc)
        if isinstance(exc, TimeoutError) and scope is not None and scope.expired():
            raise timed_out(timeout, guard, cancel_on_abandon) from None
        if error is exc:
            raise
        raise error from exc


async def _advanced(
    guard: RunGuard[R], start: Callable[[], Awaitable[R]] | R, advance: Advance[R]
) -> R:
    """Create or take the run, then advance it until terminal."""
    latest = await guard.create(start) if callable(start) else guard.take(start)
    while not latest.done:
        latest = guard.seen(await advance(latest))
    return latest


def timed_out(
    timeout: float | None, guard: RunGuard[Any], cancelled: bool
) -> PredictionTimeoutError:
    """The error of a run whose deadline passed (``guard`` has abandoned it)."""
    latest = guard.latest
    what = "training" if isinstance(latest, Training) else "prediction"
    note = ""
    if not guard.sent():
        note = "; its create was never sent (nothing was created)"
    elif cancelled and latest is not None and not latest.done:
        note = "; it was canceled on the server"
    elif cancelled and latest is None:
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
