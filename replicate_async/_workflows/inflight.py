"""What a client has in flight: runs being awaited, open streams, server-side cancels.

Every workflow (``run``, ``wait``, ``stream``, ``run_many``, a webhook wait) registers
the task awaiting it with the client's :class:`InFlight` for as long as it waits. When the
client closes, :meth:`InFlight.aclose` cancels those tasks (each cancels its run on the
server) and they fail with :class:`ClientClosedError`, never a bare
:class:`asyncio.CancelledError` nobody asked for. Server-side cancels that outlive their
caller (the caller was cancelled and got control back at once) run as background tasks
here, and ``aclose`` waits for them, bounded, before the connection pool goes away.

Every run a workflow created is also held here (an :class:`Abandonable`) until it ends, so
a run whose stream was left by ``break`` and dropped is still canceled by ``aclose`` before
the pool closes; and the client's :attr:`InFlight.observers` (:class:`RunObserver`, e.g. a
fleet's in-flight registry) hear of each created run and of its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Coroutine
from types import TracebackType
from typing import Any, Protocol

from .._clock import Clock, deadline, without_deadline
from ..exceptions import ClientClosedError
from ..models import Prediction

__all__ = [
    "CANCEL_GRACE",
    "FOREGROUND",
    "Abandonable",
    "Closable",
    "InFlight",
    "RunObserver",
    "bounded",
]

logger = logging.getLogger("replicate_async")

#: How long ``aclose()`` waits for runs to wind down and server-side cancels to land.
CANCEL_GRACE = 10.0
#: How long a cancelled or timed-out caller waits for its server-side cancel before
#: getting control back (the cancel then goes on in the background).
FOREGROUND = 1.0


class Closable(Protocol):
    """An open stream the client closes on ``aclose()`` (when nobody is iterating it)."""

    @property
    def task(self) -> asyncio.Task[Any] | None:
        """The task waiting inside the stream for its next item, if any (that task is
        cancelled instead)."""
        ...

    async def aclose(self) -> None:
        """Leave the stream, cancelling its prediction on the server."""
        ...


class Abandonable(Protocol):
    """A run a workflow created and has not finished with."""

    def abandon(self) -> object:
        """Cancel the run on the server (once, in the background; unless opted out)."""
        ...


class RunObserver(Protocol):
    """Hears of every run the client's workflows create, and of its end (fleet tracking).

    Add one to ``client.inflight.observers``. ``run_created`` is awaited right after a
    create returns (before the run is waited for), ``run_settled`` once the workflow is
    done with the run, however it ended (returned, failed, abandoned: after its cancel).
    An observer's error is logged (once per observer) and never fails a run.
    """

    async def run_created(self, prediction: Prediction) -> None:
        """A prediction was created."""
        ...

    async def run_settled(self, prediction_id: str) -> None:
        """The workflow is done with the prediction."""
        ...


class InFlight:
    """The runs, streams and background cancels of one client."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        #: Told of every run created by a workflow, and of its end.
        self.observers: list[RunObserver] = []
        self._failed_observers: set[int] = set()
        self._runs: set[Abandonable] = set()
        self._tasks: dict[asyncio.Task[Any], int] = {}
        self._closed_by_us: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        # Weak: a stream left by ``break`` and dropped is still finalized (and so its
        # prediction canceled) by the garbage collector, not kept until the client closes.
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()
        self.closed = False

    def track(self) -> _Tracked:
        """Register the current task as awaiting a run for the duration of a ``with`` block.

        If the client's ``aclose()`` cancels it, the :class:`asyncio.CancelledError` leaving
        the block becomes :class:`ClientClosedError` (unless someone else cancelled too).
        """
        if self.closed:
            raise ClientClosedError("this AsyncReplicate client is closed; create a new one")
        task = asyncio.current_task()
        assert task is not None
        return _Tracked(self._tasks, task, self)

    def hold(self, run: Abandonable) -> None:
        """Keep ``run`` until :meth:`release`: ``aclose`` abandons what is still held."""
        self._runs.add(run)

    def release(self, run: Abandonable) -> None:
        """Forget a run that ended."""
        self._runs.discard(run)

    async def created(self, prediction: Prediction) -> None:
        """Tell the observers a workflow created ``prediction``."""
        for observer in list(self.observers):
            await self._tell(observer, observer.run_created(prediction))

    async def settled(self, prediction_id: str) -> None:
        """Tell the observers a workflow is done with ``prediction_id``."""
        for observer in list(self.observers):
            await self._tell(observer, observer.run_settled(prediction_id))

    async def _tell(self, observer: RunObserver, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception as exc:  # an observer never fails a run
            level = logging.DEBUG if id(observer) in self._failed_observers else logging.WARNING
            self._failed_observers.add(id(observer))
            logger.log(level, "run observer %r failed: %r", observer, exc)

    def closed_error(self, task: asyncio.Task[Any]) -> ClientClosedError | None:
        """For a :class:`asyncio.CancelledError` in ``task``: the error to raise instead,
        when only ``aclose()`` cancelled it (``None``: someone else did too)."""
        if task not in self._closed_by_us:
            return None
        self._closed_by_us.discard(task)
        if task.uncancel():
            return None
        return ClientClosedError(
            "the client was closed while this run was in flight; it was canceled on the server"
        )

    def busy(self) -> bool:
        """True while some task awaits a run or a stream of this client."""
        return bool(self._tasks) or any(s.task is not None for s in self._streams)

    def add_stream(self, stream: Closable) -> None:
        """Remember an open stream until :meth:`discard_stream`."""
        self._streams.add(stream)

    def discard_stream(self, stream: Closable) -> None:
        """Forget a stream that was left."""
        self._streams.discard(stream)

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run ``work`` (a server-side cancel) in the background; ``aclose`` waits for it.
        It runs outside the caller's deadline: its retries are bounded by their own."""
        task = asyncio.get_running_loop().create_task(work, context=without_deadline())
        self._background.add(task)

        def forget(done: asyncio.Task[Any]) -> None:
            self._background.discard(done)
            if not done.cancelled() and done.exception() is not None:
                logger.warning("%s failed: %r", what, done.exception())

        task.add_done_callback(forget)
        return task

    async def drain(self, limit: float = CANCEL_GRACE) -> bool:
        """Wait (at most ``limit`` seconds on the clock) until no server-side cancel is
        still going on in the background; True if none is left."""
        return await self._settle(limit, runs=False)

    async def aclose(self, limit: float = CANCEL_GRACE) -> None:
        """Cancel every run and stream in flight, then wait (at most ``limit`` seconds on
        the clock) for them and for every server-side cancel to finish."""
        self.closed = True
        me = asyncio.current_task()
        streams = [s for s in self._streams if s.task is not None]
        for task in [*self._tasks, *(s.task for s in streams if s.task is not None)]:
            if task is not me and not task.done() and task not in self._closed_by_us:
                self._closed_by_us.add(task)
                task.cancel()
        # Every run still held is canceled now, whether a task awaits it (that task then
        # finds its cancel under way) or not (a stream left by ``break`` and dropped).
        for run in list(self._runs):
            run.abandon()
        for stream in [s for s in self._streams if s.task is None]:
            with contextlib.suppress(Exception):
                await stream.aclose()
        await self._settle(limit, runs=True)

    async def _settle(self, limit: float, *, runs: bool) -> bool:
        me = asyncio.current_task()
        with contextlib.suppress(TimeoutError):
            async with deadline(self.clock, limit):
                while True:
                    pending = {*self._background, *(self._tasks if runs else ())}
                    if runs:
                        pending.update(s.task for s in self._streams if s.task is not None)
                    pending = {t for t in pending if t is not me and not t.done()}
                    if not pending:
                        return True
                    await asyncio.wait(pending)
        return False


class _Tracked:
    """:meth:`InFlight.track`'s block (a plain class: entered once per run, a generator-based
    context manager costs a few microseconds more)."""

    __slots__ = ("_inflight", "_task", "_tasks")

    def __init__(
        self, tasks: dict[asyncio.Task[Any], int], task: asyncio.Task[Any], inflight: InFlight
    ) -> None:
        self._tasks = tasks
        self._task = task
        self._inflight = inflight

    def __enter__(self) -> None:
        tasks, task = self._tasks, self._task
        tasks[task] = tasks.get(task, 0) + 1

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tasks, task = self._tasks, self._task
        left = tasks.pop(task) - 1
        if left:
            tasks[task] = left
        elif kind is not None and issubclass(kind, asyncio.CancelledError):
            closed = self._inflight.closed_error(task)
            if closed:
                raise closed from None


async def bounded(clock: Clock, work: Awaitable[Any], seconds: float) -> bool:
    """Wait up to ``seconds`` (on ``clock``) for ``work`` (a task: it is never cancelled
    here). True when it finished; its own failure is for its owner to report."""
    with contextlib.suppress(TimeoutError):
        async with deadline(clock, seconds):
            await asyncio.wait({asyncio.ensure_future(work)})
            return True
    return False
