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
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from . import _check_numbers as check_numbers
from ._clock import Clock
from ._drive import abandon
from ._file_outputs import FileOutput
from ._inflight import InFlight
from ._raw import LastResponse, RawResponse, streamed
from ._run import RunHost, creator
from ._sse import ServerSentEvent, SSEDecoder
from .exceptions import APIConnectionError, APIStatusError, StreamError
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

    def stream(
        self,
        prediction: Prediction,
        *,
        idle_timeout: float = ...,
        max_reconnects: int = ...,
        raise_on_error: bool = ...,
    ) -> AsyncIterator[ServerSentEvent]:
        """The prediction's events."""
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
) -> AsyncIterator[ServerSentEvent]:
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
    or the client closing) cancels the prediction on the server.
    """

    __slots__ = ("__weakref__", "_gen", "_inflight", "_last", "_running")

    def __init__(
        self, gen: AsyncGenerator[T, None], inflight: InFlight, last: LastResponse | None = None
    ) -> None:
        self._gen = gen
        self._inflight = inflight
        self._last = last
        self._running = False
        inflight.add_stream(self)

    @property
    def last_response(self) -> RawResponse[None] | None:
        """The raw response that opened the event stream's latest connection (status,
        headers, request id, elapsed), ``None`` before it is open."""
        return None if self._last is None else self._last.value

    @property
    def running(self) -> bool:
        """True while a task is waiting inside the stream for its next item."""
        return self._running

    def __aiter__(self) -> PredictionStream[T]:
        return self

    async def __anext__(self) -> T:
        self._running = True
        try:
            with self._inflight.track():
                return await self._gen.__anext__()
        except BaseException:
            self._inflight.discard_stream(self)
            raise
        finally:
            self._running = False

    async def aclose(self) -> None:
        """Leave the stream; an unfinished prediction is canceled on the server."""
        self._inflight.discard_stream(self)
        await self._gen.aclose()

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
) -> PredictionStream[Any]:
    """Check a stream's arguments now, and return the stream (nothing is sent until it is
    iterated). ``outputs_only`` yields just the outputs (text, or :class:`FileOutput`)."""
    if check_numbers.seconds(idle_timeout, "idle_timeout") is None:
        raise TypeError("idle_timeout must be a number of seconds")
    check_numbers.non_negative_int(max_reconnects, "max_reconnects")
    create = creator(host, ref, deployment=deployment, input=input)
    last = LastResponse()
    events = _events(host, ops, create, idle_timeout, max_reconnects, raise_on_error, last)
    if outputs_only:
        return PredictionStream(_outputs(host, events), host.inflight, last)
    return PredictionStream(_skip_created(events), host.inflight, last)


async def _skip_created(
    events: AsyncGenerator[ServerSentEvent | Prediction, None],
) -> AsyncGenerator[ServerSentEvent, None]:
    try:
        async for event in events:
            if isinstance(event, ServerSentEvent):
                yield event
    finally:
        await events.aclose()


async def _outputs(
    host: RunHost, events: AsyncGenerator[ServerSentEvent | Prediction, None]
) -> AsyncGenerator[str | FileOutput, None]:
    files = False
    try:
        async for event in events:
            if isinstance(event, Prediction):
                url = event.urls.stream if event.urls else None
                files = bool(url) and urlsplit(url or "").path.startswith("/v1/files/")
            elif event.event == "output":
                yield host.file_output(event.data) if files else event.data
    finally:
        await events.aclose()


async def _events(
    host: RunHost,
    ops: StreamOps,
    create: Callable[[], Awaitable[Prediction]],
    idle_timeout: float,
    max_reconnects: int,
    raise_on_error: bool,
    last: LastResponse,
) -> AsyncGenerator[ServerSentEvent | Prediction, None]:
    """The created prediction first, then its events; canceled on the server if left early."""
    cancel, inflight = host.predictions.cancel, host.inflight
    creating = asyncio.ensure_future(create())
    try:
        prediction = await asyncio.shield(creating)
    except asyncio.CancelledError:
        await abandon(inflight, cancel, None, creating)
        raise
    yield prediction
    finished = False
    try:
        events = ops.stream(
            prediction,
            idle_timeout=idle_timeout,
            max_reconnects=max_reconnects,
            raise_on_error=raise_on_error,
        )
        async for event in events:
            last.value = getattr(events, "last_response", None)
            finished = event.event == "done"
            yield event
    finally:
        if not finished:
            # Abandoned (cancelled, left, or failed mid-stream): nothing may keep running,
            # and billing, behind the caller's back.
            await abandon(inflight, cancel, prediction, None)
