"""The server-sent events of one prediction, read over as many connections as it takes.

A dropped connection is resumed with ``Last-Event-ID`` after the server's ``retry:``
delay (bounded) or a short backoff, and an event the server replays after a resume is
never yielded twice. ``predictions.stream()`` hands these events over as they come;
``client.stream()`` (:mod:`replicate_async._workflows.stream`) reads them for a run it created.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

from .._clock import Clock
from ..exceptions import APIConnectionError, APIStatusError, StreamError
from ..models import Prediction
from .raw import LastResponse, streamed
from .sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    import aiohttp

    from .http import HTTPCore

__all__ = [
    "MAX_RETRY_DELAY",
    "REPLAY_WINDOW",
    "prediction_events",
    "reconnect_delay",
    "stream_events",
]

logger = logging.getLogger("replicate_async")

#: How many of the latest events a resumed stream is checked against for replays.
REPLAY_WINDOW = 4096
#: The longest reconnection delay honoured from a stream's ``retry:`` field, in seconds.
MAX_RETRY_DELAY = 30.0


def prediction_events(
    http: HTTPCore,
    prediction: Prediction,
    *,
    clock: Clock,
    idle_timeout: float,
    max_reconnects: int,
    raise_on_error: bool,
    sink: LastResponse | None,
) -> AsyncGenerator[list[ServerSentEvent], None]:
    """The events of ``prediction``, a list per chunk read (a :class:`StreamError` at once
    if its model does not stream): :func:`stream_events` on its stream URL."""
    if not isinstance(prediction, Prediction):
        raise TypeError(f"prediction must be a Prediction, got {type(prediction).__name__}")
    url = prediction.urls.stream if prediction.urls is not None else None
    if not url:
        raise StreamError(
            f"prediction {prediction.id} has no stream URL (its model does not stream)"
        )
    return stream_events(
        http,
        url,
        clock=clock,
        idle_timeout=idle_timeout,
        max_reconnects=max_reconnects,
        raise_on_error=raise_on_error,
        sink=sink,
    )


async def stream_events(
    http: HTTPCore,
    url: str,
    *,
    clock: Clock,
    idle_timeout: float = 60.0,
    max_reconnects: int = 5,
    raise_on_error: bool = True,
    sink: LastResponse | None = None,
) -> AsyncGenerator[list[ServerSentEvent], None]:
    """Yield the events of a prediction's SSE stream until ``done``, a list at a time: the
    events decoded from one chunk read (never empty), so that readers hand them out
    without a generator step per event (:class:`~replicate_async.RawStream`).

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
                    events = decoder.feed(chunk)
                    if events and not seen and not decoder.ending:
                        # Nothing to skip, nothing that ends the stream: the list as it is.
                        failures = 0
                        recent.extend([e for e in events[-REPLAY_WINDOW:] if e.id is not None])
                        yield events
                        continue
                    batch: list[ServerSentEvent] = []
                    for event in events:
                        failures = 0
                        if event.id is not None and event.event != "done":
                            if seen and (event.id, event.event, hash(event.data)) in seen:
                                continue
                            recent.append(event)
                        if event.event == "error" and raise_on_error:
                            if batch:  # what came before the error is delivered first
                                yield batch
                            raise StreamError(
                                f"the stream reported an error: {event.data}", detail=event.data
                            )
                        batch.append(event)
                        if event.event == "done":
                            yield batch
                            return
                    if batch:
                        yield batch
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
