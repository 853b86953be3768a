"""``client.stream()`` and ``stream_output()``: a prediction created for its events (read by
:mod:`replicate_async._core.sse_reader`), canceled on the server if the stream is left early.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

from .._clock import Clock, deadline
from .._core.raw import LastResponse, RawResponse
from .._core.sse import ServerSentEvent
from .._core.sse_reader import prediction_events
from ..exceptions import ClientClosedError
from ..models import Prediction
from .drive import RunGuard, timed_out
from .file_outputs import FileOutput
from .inflight import InFlight

if TYPE_CHECKING:
    from .._core.http import HTTPCore

__all__ = ["Batch", "PredictionStream", "Reading", "stream_items"]

logger = logging.getLogger("replicate_async")

T = TypeVar("T")


class Batch(list[T]):
    """Items that arrived together (the events of one chunk read): a stream's generator
    may yield one instead of a single item, and :class:`PredictionStream` hands them out
    one by one without a generator step or an in-flight registration per item."""

    __slots__ = ()


class PredictionStream(Generic[T]):
    """The stream of a prediction created by ``client.stream()`` (or ``stream_output()``).

    Iterate it (``async for event in client.stream(...)``) or, to have the prediction
    canceled the moment you leave, use it as a context manager::

        async with client.stream("owner/model", input=...) as events:
            async for event in events:
                ...

    Leaving before ``done`` (``break``, an exception, a cancelled task, :meth:`aclose`,
    the deadline, or the client closing) cancels the prediction on the server, and an
    error raised names it (``.prediction``).
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_end",
        "_expired",
        "_gen",
        "_guard",
        "_inflight",
        "_last",
        "_ready",
        "_task",
        "_timeout",
    )

    def __init__(
        self,
        gen: AsyncGenerator[T | Batch[T], None],
        inflight: InFlight,
        last: LastResponse | None = None,
        *,
        guard: RunGuard[Prediction] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._gen = gen
        self._inflight = inflight
        self._last = last
        self._task: asyncio.Task[Any] | None = None
        self._ready: collections.deque[T] = collections.deque()
        self._guard = guard
        self._timeout = timeout
        self._clock = inflight.clock
        self._end: float | None = None
        self._expired = False
        inflight.add_stream(self)

    @property
    def last_response(self) -> RawResponse[None] | None:
        """The raw response that opened the event stream's latest connection (status,
        headers, request id, elapsed), ``None`` before it is open."""
        return None if self._last is None else self._last.value

    @property
    def running(self) -> bool:
        """True while a task is waiting inside the stream for its next item."""
        return self._task is not None

    @property
    def task(self) -> asyncio.Task[Any] | None:
        """The task waiting inside the stream for its next item (the client's ``aclose()``
        cancels it), if any."""
        return self._task

    def __aiter__(self) -> PredictionStream[T]:
        return self

    async def __anext__(self) -> T:
        # The client knows the waiting task through ``task``: no per-item registration.
        if self._inflight.closed:
            raise ClientClosedError("this AsyncReplicate client is closed; create a new one")
        ready = self._ready
        if ready:
            return ready.popleft()  # the rest of a batch: no wait, no generator step
        self._task = asyncio.current_task()
        try:
            item = await (self._gen.__anext__() if self._timeout is None else self._next_within())
            if isinstance(item, Batch):
                ready.extend(item)
                return ready.popleft()
            return item
        except StopAsyncIteration:
            self._inflight.discard_stream(self)
            raise
        except BaseException as exc:
            self._inflight.discard_stream(self)
            error = await self._left(exc)
            if error is exc:
                raise
            raise error from None if isinstance(exc, asyncio.CancelledError) else exc
        finally:
            self._task = None

    async def _left(self, exc: BaseException) -> BaseException:
        """The error to raise for ``exc`` (the run abandoned and named, if this stream has
        one; a cancellation by the client's ``aclose()`` is a :class:`ClientClosedError`)."""
        error: BaseException = exc
        task = self._task
        if isinstance(exc, asyncio.CancelledError) and task is not None:
            error = self._inflight.closed_error(task) or exc
        guard = self._guard
        if guard is None:
            return error
        error = await guard.leave(error)
        if self._expired and isinstance(exc, TimeoutError):
            return timed_out(self._timeout, guard, True)
        return error

    async def _next_within(self) -> T | Batch[T]:
        """The next item, within what is left of the whole stream's ``timeout``."""
        clock = self._clock
        now = clock.monotonic()
        if self._end is None:
            assert self._timeout is not None
            self._end = now + self._timeout
        async with deadline(clock, max(self._end - now, 0.0)) as scope:
            try:
                return await self._gen.__anext__()
            finally:
                self._expired = scope.expired()

    async def aclose(self) -> None:
        """Leave the stream; an unfinished prediction is canceled on the server."""
        self._ready.clear()
        self._inflight.discard_stream(self)
        await self._gen.aclose()
        if self._guard is not None:
            await self._guard.close()

    async def __aenter__(self) -> PredictionStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Reading(NamedTuple):
    """How a created prediction's events are read."""

    idle_timeout: float
    max_reconnects: int
    raise_on_error: bool
    last: LastResponse


async def stream_items(
    http: HTTPCore,
    clock: Clock,
    guard: RunGuard[Prediction],
    create: Callable[[], Awaitable[Prediction]],
    reading: Reading,
    files: Callable[[str], FileOutput] | None,
) -> AsyncGenerator[Any, None]:
    """Create the prediction, then yield its events (or, with ``files``, only its outputs:
    text, or a :class:`FileOutput` when the model streams files). One generator over the
    SSE reader, a :class:`Batch` per chunk read: no layer and no step per item. Left before
    ``done``, the run is canceled on the server."""
    finished = False
    events: AsyncGenerator[list[ServerSentEvent], None] | None = None
    try:
        prediction = await guard.create(create)
        url = prediction.urls.stream if prediction.urls else None
        as_files = files is not None and urlsplit(url or "").path.startswith("/v1/files/")
        events = prediction_events(
            http,
            prediction,
            clock=clock,
            idle_timeout=reading.idle_timeout,
            max_reconnects=reading.max_reconnects,
            raise_on_error=reading.raise_on_error,
            sink=reading.last,
        )
        async for batch in events:  # the events of one chunk read; ``done`` ends the last
            if batch[-1].event == "done":
                finished = True
                await guard.finish()
            if files is None:
                yield Batch(batch)
                continue
            texts = [event.data for event in batch if event.event == "output"]
            if texts:
                yield Batch([files(url) for url in texts] if as_files else texts)
    finally:
        if not finished:
            # Abandoned (cancelled, left, failed mid-stream, or dropped and finalized):
            # nothing may keep running, and billing, behind the caller's back.
            guard.abandon()
        if events is not None:
            await events.aclose()
