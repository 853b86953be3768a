"""An incremental Server-Sent Events decoder.

This follows the WHATWG HTML "event stream interpretation" algorithm
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

* the stream is UTF-8, decoded with replacement characters; one leading BOM is skipped;
* lines end with ``\\r\\n``, ``\\n`` or ``\\r`` (a ``\\r\\n`` pair split across two chunks
  still counts as one line ending);
* ``:`` starts a comment; otherwise ``name: value`` (one space after the colon is dropped)
  or a bare ``name`` with an empty value; unknown field names are ignored;
* ``data`` lines are joined with ``\\n``; ``event`` sets the type (default ``"message"``);
  ``id`` sets the last event id unless it contains NUL; ``retry`` is honoured only when it
  is all ASCII digits;
* a blank line dispatches the event, unless no ``data`` line was seen (the id still updates).

Chunks may be split anywhere, including inside a UTF-8 sequence. Work is done per line with
``str.split``/``str.partition`` on whole chunks, never per character.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import attrs

from ..exceptions import InvalidArgumentError, StreamError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent", "iter_sse"]

#: Default cap, in characters, on one line and on one event's data buffer (16 MiB).
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024


@attrs.frozen(slots=True)
class ServerSentEvent:
    """One dispatched event.

    ``id`` is the stream's last event id at dispatch time: per the spec it persists from
    earlier events until another ``id`` field changes it (``None`` if never set or reset by an
    empty ``id`` field). ``retry`` is the ``retry`` value given in this event's own block, if any.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """Parse ``data`` as JSON; :class:`StreamError` if it is not valid JSON."""
        try:
            return json.loads(self.data)
        except ValueError as exc:
            raise StreamError(
                f"the {self.event!r} event's data is not valid JSON", detail=self.data
            ) from exc


#: ``ServerSentEvent(event, data, id, retry)`` at a third of the cost: the frozen class's
#: ``__init__`` sets each slot through ``object.__setattr__``; the decoder sets them through
#: their descriptors (the class has no validators or converters to skip).
_MAKE_EVENT: tuple[Callable[..., Any], ...] = (
    object.__new__,
    *(ServerSentEvent.__dict__[name].__set__ for name in ("event", "data", "id", "retry")),
)


#: Replicate's own block shape: exactly these three fields, in this order, an id without NUL.
_BLOCK = re.compile(r"event: ([^\n]*)\nid: ([^\n\0]*)\ndata: ([^\n]*)\n\n")
#: The event types that end a prediction's stream (see :attr:`SSEDecoder.ending`).
_ENDING_TYPES = frozenset({"error", "done"})


class SSEDecoder:
    """Turns a byte stream, fed in arbitrary chunks, into :class:`ServerSentEvent` objects.

    Observable state a client can use:

    * ``last_event_id``: the id to send as ``Last-Event-ID`` when reconnecting (``None`` if
      none); updated when a blank line ends an event block, dispatched or not;
    * ``retry``: the most recent reconnection time (milliseconds) the server asked for;
    * ``comments`` / ``last_comment``: how many comment lines were seen and the text of the
      latest one (after the ``:`` and one optional space), e.g. ``"408: 408 Request Timeout"``
      for Replicate's keep-alive timeout; ``on_comment``, if given, is called with each one.

    ``max_event_size`` bounds memory: a line, or one event's joined ``data``, longer than this
    many characters raises :class:`StreamError`. After any exception the decoder is unusable.
    """

    __slots__ = (
        "_data",
        "_data_size",
        "_decoder",
        "_event",
        "_event_retry",
        "_id",
        "_last_event_id",
        "_pending",
        "_pending_size",
        "_skip_lf",
        "comments",
        "ending",
        "last_comment",
        "max_event_size",
        "on_comment",
        "retry",
    )

    def __init__(
        self,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        on_comment: Callable[[str], object] | None = None,
        last_event_id: str | None = None,
    ) -> None:
        if max_event_size < 1:
            raise InvalidArgumentError("max_event_size must be positive")
        self.max_event_size = max_event_size
        self.on_comment = on_comment
        self.comments = 0
        self.last_comment: str | None = None
        #: Whether the events of the latest :meth:`feed` may include an ``error`` or a
        #: ``done`` (``False``: surely none; readers then hand the list over as it is).
        self.ending = False
        self.retry: int | None = None
        self._id = last_event_id or ""  # the spec's "last event ID buffer"
        self._last_event_id = self._id  # the spec's "last event ID string"
        self._reset_stream()

    def _reset_stream(self) -> None:
        # "utf-8-sig" drops one leading BOM, even when it arrives a byte at a time.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("replace")
        self._skip_lf = False  # the previous chunk ended with "\r": drop a leading "\n"
        self._pending: list[str] = []  # pieces of the current, unterminated line
        self._pending_size = 0
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._event_retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The id to resume from (``Last-Event-ID``), or ``None``."""
        return self._last_event_id or None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode one chunk; return the events completed by it (often none)."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            # A trailing "\r" ends a line now; a "\n" starting the next chunk is its pair.
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        cut = text.rfind("\n") + 1
        limit = self.max_event_size
        if not cut:  # no line ending in this chunk: just remember the piece
            self._pending.append(text)
            self._pending_size += len(text)
            if self._pending_size > limit:
                raise StreamError(f"an event-stream line exceeds {limit} characters")
            return []
        body, tail = text[:cut], text[cut:]  # whole lines (each ending in "\n"), the rest
        if self._pending:
            self._pending.append(body)
            body = "".join(self._pending)
            self._pending = []
        if self._pending_size + len(text) > limit and max(map(len, body.split("\n"))) > limit:
            raise StreamError(f"an event-stream line exceeds {limit} characters")
        if tail:
            if len(tail) > limit:
                raise StreamError(f"an event-stream line exceeds {limit} characters")
            self._pending = [tail]
        self._pending_size = len(tail)
        # An event's type comes from the block under way or from a line of this text (set
        # by _consume for the blocks it makes, by _process for the lines it reads).
        self.ending = self._event in _ENDING_TYPES
        return self._consume(body)

    def _consume(self, body: str) -> list[ServerSentEvent]:
        """The events of whole lines. Blocks of Replicate's own shape (``_BLOCK``) found at a
        block boundary are made straight from the regular expression's groups; any other
        text, or a match that does not start a block, goes line by line (:meth:`_process`)."""
        events: list[ServerSentEvent] = []
        parts = _BLOCK.split(body)  # [before, event, id, data, between, event, id, ...]
        if not _ENDING_TYPES.isdisjoint(parts[1::4]):  # the types, checked in C
            self.ending = True
        slow = parts[0]  # text not yet decoded; it always starts at a line start
        idle = not self._data and not self._event and self._event_retry is None
        last_id: str | None = None  # the id of the latest block made here, not yet stored
        new, set_event, set_data, set_id, set_retry = _MAKE_EVENT
        append = events.append
        fields = iter(parts)
        next(fields)
        for event, event_id, data, between in zip(fields, fields, fields, fields, strict=True):
            if slow and slow[-1] == "\n":
                if last_id is not None:
                    self._id = self._last_event_id = last_id
                    last_id = None
                self._lines(slow, events)
                slow = ""
                idle = not self._data and not self._event and self._event_retry is None
            if idle and not slow:  # what _process makes of the block, without the lines
                made = new(ServerSentEvent)
                set_event(made, event or "message")
                set_data(made, data)
                set_id(made, event_id or None)
                set_retry(made, None)
                append(made)
                last_id = event_id
            else:  # mid-block or mid-line: the matched text is decoded as any other
                slow += f"event: {event}\nid: {event_id}\ndata: {data}\n\n"
                idle = True
            if between:
                slow += between
        if last_id is not None:
            self._id = self._last_event_id = last_id
        if slow:
            self._lines(slow, events)
        return events

    def _lines(self, text: str, events: list[ServerSentEvent]) -> None:
        lines = text.split("\n")
        lines.pop()  # the "" after the final line ending
        self._process(lines, events)

    def _process(self, lines: list[str], events: list[ServerSentEvent]) -> None:
        # Any block, line by line: locals only, one ``partition`` per line, and events
        # made without ``__init__`` (see ``_MAKE_EVENT``).
        new, set_event, set_data, set_id, set_retry = _MAKE_EVENT
        data = self._data
        data_size = self._data_size
        event = self._event
        event_id = self._id
        committed = self._last_event_id
        retry = self._event_retry
        limit = self.max_event_size
        for line in lines:
            if not line:  # blank line: dispatch
                committed = event_id
                if data:
                    made = new(ServerSentEvent)  # ``_event()``, inlined
                    set_event(made, event or "message")
                    set_data(made, data[0] if len(data) == 1 else "\n".join(data))
                    set_id(made, event_id or None)
                    set_retry(made, retry)
                    events.append(made)
                    data = []
                    data_size = 0
                event = ""
                retry = None
                continue
            # "name: value" is the common shape; a colon in the name, or none followed by
            # a space, takes the general path (split at the first colon, drop one space).
            name, sep, value = line.partition(": ")
            if not sep or ":" in name:
                name, _, value = line.partition(":")
                if value[:1] == " ":
                    value = value[1:]
            if name == "data":
                data.append(value)
                data_size += len(value) + 1
                if data_size > limit:
                    raise StreamError(f"an event's data exceeds {limit} characters")
            elif name == "event":
                event = value
                if value in _ENDING_TYPES:
                    self.ending = True
            elif name == "id":
                if "\0" not in value:
                    event_id = value
            elif name == "retry":
                if len(value) <= 18 and value.isdigit() and value.isascii():
                    retry = self.retry = int(value)  # bounded: int() refuses > 4,300 digits
            elif not name:  # the line starts with ":"
                self.comments += 1
                self.last_comment = value
                if self.on_comment is not None:
                    self.on_comment(value)
        self._data = data
        self._data_size = data_size
        self._event = event
        self._id = event_id
        self._last_event_id = committed
        self._event_retry = retry

    def flush(self) -> list[ServerSentEvent]:
        """Mark the end of the stream; returns no events (the list is for symmetry).

        Per the spec, an event not yet ended by a blank line when the stream ends is
        incomplete and is discarded, never dispatched. The decoder is then ready for a
        new connection: ``last_event_id`` and ``retry`` are kept (to resume with), a BOM is
        again accepted at the start, and all partial line and event state is dropped.
        """
        self._reset_stream()
        self._id = self._last_event_id  # an id from the discarded block was never committed
        return []


async def iter_sse(
    chunks: AsyncIterable[bytes], decoder: SSEDecoder | None = None
) -> AsyncIterator[ServerSentEvent]:
    """Yield the events of a byte stream (e.g. ``response.content.iter_any()``).

    Pass your own ``decoder`` to keep its ``last_event_id``/``retry``/comment state across
    reconnections. An incomplete event at the end of the stream is discarded (see
    :meth:`SSEDecoder.flush`).
    """
    if decoder is None:
        decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
