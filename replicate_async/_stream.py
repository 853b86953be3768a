"""Server-sent events of a prediction: reading them (resuming dropped connections), and
``client.stream()``: a prediction created for its stream, canceled if the stream is left.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar
from urllib.parse import urlsplit

from . import _check_numbers as check_numbers
from ._clock import Clock, deadline
from ._drive import OnCreated, RunGuard, timed_out
from ._file_outputs import FileOutput
from ._inflight import InFlight
from ._raw import LastResponse, RawResponse, streamed
from ._run import RunHost, creator, deadline_options
from ._sse import ServerSentEvent, SSEDecoder
from .exceptions import APIConnectionError, APIStatusError, ClientClosedError, StreamError
from .models import Prediction

if TYPE_CHECKING:
    import aiohttp

    from ._http import HTTPCore

__all__ = ["MAX_RETRY_DELAY", "PredictionStream", "open_stream", "stream_events"]

logger = logging.getLogger("replicate_async")

#: How many of the latest events a resumed stream is checked against for replays.
REPLAY_WINDOW = 4096
#: The longest reconnection delay honoured from a stream's ``retry:`` field, in seconds.
MAX_RETRY_DELAY = 30.0

T = TypeVar("T")


class StreamOps(Protocol):
    """What a stream needs beyond :class:`RunHost`: the SSE reader of a prediction."""

    def _events(
        self,
        prediction: Prediction,
        *,
        idle_timeout: float,
        max_reconnects: int,
        raise_on_error: bool,
        sink: LastResponse | None,
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """The prediction's events (the bare reader, telling ``sink`` of each connection)."""
        ...


async def stream_events(
    http: HTTPCore,
    url: str,
    *,
    clock: Clock,
    idle_timeout: float = 60.0,
    max_reconnects: int = 5,
    raise_on_error: bool = True,
    sink: LastResponse | None = None,
) -> AsyncGenerator[ServerSentEvent, None]:
    """Yield the events of a prediction's SSE stream until ``done``.

    A dropped connection is resumed with ``Last-Event-ID`` (at most ``max_reconnects``
    times in a row), after the server's ``retry:`` delay (at most :data:`MAX_RETRY_DELAY`)
    or a short backoff; an event already seen (same id, type and data) is never yielded
    twice. An ``error`` event raises :class:`StreamError` unless ``raise_on_error=False``.
    ``sink`` gets the raw response of each connection opened.
    """
    decoder = SSEDecoder()
    # An event without an ``id:`` line inherits the previous id (Replicate's ``error``
    # has none), so an event is known by its id, type and data together, not its id alone.
    # Duplicates only come from a replay after a resume, so events are checked only then,
    # against the latest REPLAY_WINDOW ones: no per-event key, memory flat on long streams.
    recent: collections.deque[ServerSentEvent] = collections.deque(maxlen=REPLAY_WINDOW)
    seen: set[tuple[str, str, int]] = set()
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if decoder.last_event_id:
            headers["Last-Event-ID"] = decoder.last_event_id
        try:
            async with _open(http, url, headers, idle_timeout, clock, sink) as resp:
                async for chunk in resp.content.iter_any():
                    for event in decoder.feed(chunk):
                        failures = 0
                        if event.id is not None and event.event != "done":
                            if seen and (event.id, event.event, hash(event.data)) in seen:
                                continue
                            recent.append(event)
                        if event.event == "error" and raise_on_error:
                            raise StreamError(
                                f"the stream reported an error: {event.data}", detail=event.data
                            )
                        yield event
                        if event.event == "done":
                            return
        except APIStatusError:
            raise
        except APIConnectionError as exc:
            failures += 1
            if failures > max_reconnects:
                raise StreamError(f"the stream broke {failures} times in a row; giving up") from exc
            logger.debug("stream dropped (%s); resuming after %s", exc, decoder.last_event_id)
        else:
            failures += 1
            if failures > max_reconnects:
                raise StreamError("the stream ended without a done event")
        decoder.flush()
        seen = {(e.id or "", e.event, hash(e.data)) for e in recent}
        await clock.sleep(reconnect_delay(decoder.retry, failures))


@contextlib.asynccontextmanager
async def _open(
    http: HTTPCore,
    url: str,
    headers: dict[str, str],
    idle_timeout: float,
    clock: Clock,
    sink: LastResponse | None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Open one connection of the stream; tell ``sink`` its raw response."""
    opening = clock.monotonic()
    async with http.stream("GET", url, headers=headers, read_timeout=idle_timeout) as resp:
        if sink is not None:
            elapsed = clock.monotonic() - opening
            sink.value = streamed("GET", str(resp.url), resp.status, resp.headers, elapsed)
        yield resp


def reconnect_delay(retry_ms: int | None, failures: int) -> float:
    """Seconds before reconnecting: the server's ``retry:`` (bounded), else a backoff."""
    if retry_ms is not None:
        return min(max(float(retry_ms), 0.0) / 1000, MAX_RETRY_DELAY)
    return min(2.0, 0.1 * 2.0**failures)


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
        "_task",
        "_timeout",
    )

    def __init__(
        self,
        gen: AsyncGenerator[T, None],
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
        self._task = asyncio.current_task()
        try:
            if self._timeout is None:
                return await self._gen.__anext__()
            return await self._next_within()
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

    async def _next_within(self) -> T:
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


def open_stream(
    host: RunHost,
    ops: StreamOps,
    ref: str | None,
    *,
    input: Mapping[str, Any],
    deployment: str | None,
    idle_timeout: float,
    max_reconnects: int,
    raise_on_error: bool = True,
    outputs_only: bool = False,
    timeout: float | None = None,
    on_created: OnCreated | None = None,
) -> PredictionStream[Any]:
    """Check a stream's arguments now, and return the stream (nothing is sent until it is
    iterated). ``outputs_only`` yields just the outputs (text, or :class:`FileOutput`).
    ``timeout`` is one deadline for the create, the whole stream and the cancel."""
    if check_numbers.seconds(idle_timeout, "idle_timeout") is None:
        raise TypeError("idle_timeout must be a number of seconds")
    check_numbers.non_negative_int(max_reconnects, "max_reconnects")
    timeout = check_numbers.seconds(timeout, "timeout")
    _, cancel_after = deadline_options(timeout, None, None)
    create = creator(host, ref, deployment=deployment, input=input, cancel_after=cancel_after)
    guard = RunGuard(host.inflight, host.predictions.cancel, on_created=on_created)
    reading = _Reading(idle_timeout, max_reconnects, raise_on_error, LastResponse())
    files = host.file_output if outputs_only else None
    items = _items(ops, guard, create, reading, files)
    return PredictionStream(items, host.inflight, reading.last, guard=guard, timeout=timeout)


class _Reading(NamedTuple):
    """How a created prediction's events are read."""

    idle_timeout: float
    max_reconnects: int
    raise_on_error: bool
    last: LastResponse


async def _items(
    ops: StreamOps,
    guard: RunGuard[Prediction],
    create: Callable[[], Awaitable[Prediction]],
    reading: _Reading,
    files: Callable[[str], FileOutput] | None,
) -> AsyncGenerator[Any, None]:
    """Create the prediction, then yield its events (or, with ``files``, only its outputs:
    text, or a :class:`FileOutput` when the model streams files). One generator over the
    SSE reader: no layer per item. Left before ``done``, the run is canceled on the server."""
    finished = False
    events: AsyncGenerator[ServerSentEvent, None] | None = None
    try:
        prediction = await guard.create(create)
        url = prediction.urls.stream if prediction.urls else None
        as_files = files is not None and urlsplit(url or "").path.startswith("/v1/files/")
        events = ops._events(
            prediction,
            idle_timeout=reading.idle_timeout,
            max_reconnects=reading.max_reconnects,
            raise_on_error=reading.raise_on_error,
            sink=reading.last,
        )
        async for event in events:
            if event.event == "done":
                finished = True
                await guard.finish()
            if files is None:
                yield event
            elif event.event == "output":
                yield files(event.data) if as_files else event.data
    finally:
        if not finished:
            # Abandoned (cancelled, left, failed mid-stream, or dropped and finalized):
            # nothing may keep running, and billing, behind the caller's back.
            guard.abandon()
        if events is not None:
            await events.aclose()
