"""The incremental Server-Sent Events decoder (replicate_async._core.sse)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replicate_async._core.sse import ServerSentEvent, SSEDecoder, iter_sse
from replicate_async.exceptions import StreamError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRANSCRIPTS: dict[str, str] = {
    name: value
    for name, value in json.loads(
        (EXAMPLES / "sse-stream-transcripts.json").read_text(encoding="utf-8")
    ).items()
    if name != "content_type"
}

# Per the spec, an event's id is the stream's *last* event id, which persists until changed:
# the `done` events below carry no `id:` line but inherit the previous one.
EXPECTED: dict[str, list[ServerSentEvent]] = {
    "succeeded": [
        ServerSentEvent("output", "Once upon a time...", "1690212292:0"),
        ServerSentEvent("output", "The End.", "1690212293:0"),
        ServerSentEvent("done", "{}", "1690212293:0"),
    ],
    "canceled": [
        ServerSentEvent("output", "Once upon a time...", "1690212292:0"),
        ServerSentEvent("done", '{"reason": "canceled"}', "1690212292:0"),
    ],
    "error": [
        ServerSentEvent("output", "Once upon a time...", "1690212292:0"),
        ServerSentEvent("error", '{"detail": "Something went wrong"}', "1690212292:0"),
        ServerSentEvent("done", '{"reason": "error"}', "1690212292:0"),
    ],
    "multiline_output_event": [
        ServerSentEvent(
            "output",
            "hello,\nthis is a new line,\nand this is a new line too",
            "EVENT_1",
        ),
        ServerSentEvent("done", "{}", "EVENT_2"),
    ],
    "timeout_comment_after_30s": [],
}


def decode(chunks: Iterable[bytes], decoder: SSEDecoder | None = None) -> list[ServerSentEvent]:
    decoder = decoder or SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def split_at(raw: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(points)]


# --------------------------------------------------------------------------- transcripts


def test_every_transcript_has_an_expectation() -> None:
    assert set(TRANSCRIPTS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_whole(name: str) -> None:
    assert decode([TRANSCRIPTS[name].encode()]) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_one_byte_at_a_time(name: str) -> None:
    assert decode(bytewise(TRANSCRIPTS[name].encode())) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_transcript_other_line_endings(name: str, newline: str) -> None:
    raw = TRANSCRIPTS[name].replace("\n", newline).encode()
    assert decode([raw]) == EXPECTED[name]
    assert decode(bytewise(raw)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_random_chunkings(name: str) -> None:
    raw = ("\ufeff" + TRANSCRIPTS[name]).encode()
    rng = random.Random(name)
    for _ in range(200):
        cuts = rng.sample(range(1, len(raw)), rng.randint(0, min(12, len(raw) - 1)))
        assert decode(split_at(raw, cuts)) == EXPECTED[name]


def test_every_split_point_of_a_transcript() -> None:
    raw = TRANSCRIPTS["error"].encode()
    for i in range(len(raw) + 1):
        assert decode([raw[:i], raw[i:]]) == EXPECTED["error"], i


def test_transcript_events_parse_as_json() -> None:
    events = decode([TRANSCRIPTS["error"].encode()])
    assert events[1].json() == {"detail": "Something went wrong"}
    assert events[2].json() == {"reason": "error"}


def test_timeout_comment_is_observable() -> None:
    seen: list[str] = []
    decoder = SSEDecoder(on_comment=seen.append)
    assert decoder.feed(TRANSCRIPTS["timeout_comment_after_30s"].encode()) == []
    assert decoder.comments == 1
    assert decoder.last_comment == "408: 408 Request Timeout"
    assert seen == ["408: 408 Request Timeout"]


# --------------------------------------------------------------------------- the spec


def test_defaults_event_type_to_message_and_id_to_none() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: hi\n\n") == [ServerSentEvent("message", "hi", None, None)]
    assert decoder.last_event_id is None


def test_utf8_split_inside_a_multibyte_sequence() -> None:
    raw = "data: héllo 🐍 wörld\n\n".encode()
    expected = [ServerSentEvent("message", "héllo 🐍 wörld")]
    assert decode(bytewise(raw)) == expected
    snake = raw.index("🐍".encode())
    for cut in range(snake, snake + 5):
        assert decode([raw[:cut], raw[cut:]]) == expected


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode([b"data: a\xffb\n\n"]) == [ServerSentEvent("message", "a\ufffdb")]


def test_bom_is_stripped_once_even_split() -> None:
    raw = b"\xef\xbb\xbfdata: x\n\n"
    assert decode([raw]) == [ServerSentEvent("message", "x")]
    assert decode(bytewise(raw)) == [ServerSentEvent("message", "x")]
    # A second BOM is part of the first line's field name, so that line is an unknown field.
    assert decode([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n"]) == [
        ServerSentEvent("message", "y")
    ]
    # A BOM later in the stream is ordinary content.
    assert decode([b"data: \xef\xbb\xbfx\n\n"]) == [ServerSentEvent("message", "\ufeffx")]


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n"])
def test_line_endings(newline: str) -> None:
    raw = f"event: a{newline}data: 1{newline}data: 2{newline}{newline}data: 3{newline}{newline}"
    expected = [ServerSentEvent("a", "1\n2"), ServerSentEvent("message", "3")]
    assert decode([raw.encode()]) == expected
    assert decode(bytewise(raw.encode())) == expected


def test_cr_then_lf_in_the_next_chunk_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Were "\r" + "\n" two line endings, the blank line would dispatch "a" on its own.
    assert decoder.feed(b"\ndata: b\r\n") == []
    assert decoder.feed(b"\r\n") == [ServerSentEvent("message", "a\nb")]


def test_lone_cr_dispatches_without_waiting_for_more_input() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [ServerSentEvent("message", "a")]
    # The "\n" after the second "\r" pairs with it and is not another blank line.
    assert decoder.feed(b"\ndata: b\r\r") == [ServerSentEvent("message", "b")]


def test_mixed_line_endings() -> None:
    assert decode([b"data: a\r\ndata: b\rdata: c\n\r\n"]) == [ServerSentEvent("message", "a\nb\nc")]


def test_field_value_parsing() -> None:
    raw = b"data:nospace\ndata:  two\ndata\ndata:\ndata: a: b\n\n"
    assert decode([raw]) == [ServerSentEvent("message", "nospace\n two\n\n\na: b")]


def test_a_name_ends_at_the_first_colon_even_before_a_colon_space() -> None:
    """The fast path splits at ": "; a colon earlier in the line still ends the name."""
    raw = b"data:x: y\nda:ta: no\nevent:a: b\nid:1: 2\n:: comment\ndata::\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(raw) == [ServerSentEvent("a: b", "x: y\n:", "1: 2")]
    assert decoder.last_comment == ": comment"


def test_field_without_colon_has_empty_value() -> None:
    assert decode([b"data\n\n"]) == [ServerSentEvent("message", "")]
    assert decode([b"data\ndata\n\n"]) == [ServerSentEvent("message", "\n")]
    assert decode([b"event\ndata: x\n\n"]) == [ServerSentEvent("message", "x")]


def test_field_names_are_case_sensitive_and_unknown_ignored() -> None:
    raw = b"Data: no\nfoo: bar\nEVENT: no\ndata : no\ndata: yes\n\n"
    assert decode([raw]) == [ServerSentEvent("message", "yes")]


def test_comments_are_ignored_but_counted() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": ping\ndata: a\n:\n:no-space\ndata: b\n\n: tail\n")
    assert events == [ServerSentEvent("message", "a\nb")]
    assert decoder.comments == 4
    assert decoder.last_comment == "tail"


def test_event_type_resets_after_dispatch() -> None:
    raw = b"event: a\ndata: 1\n\ndata: 2\n\nevent: b\n\ndata: 3\n\n"
    assert [(e.event, e.data) for e in decode([raw])] == [
        ("a", "1"),
        ("message", "2"),
        ("message", "3"),
    ]


def test_empty_data_events_are_not_dispatched_but_id_updates() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: ping\n\n") == []
    assert decoder.feed(b"id: 7\n\n") == []
    assert decoder.last_event_id == "7"
    assert decoder.feed(b"data: x\n\n") == [ServerSentEvent("message", "x", "7")]


def test_id_persists_and_can_be_reset() -> None:
    raw = b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 2\ndata: d\n\nid:\ndata: e\n\n"
    decoder = SSEDecoder()
    assert [(e.data, e.id) for e in decoder.feed(raw)] == [
        ("a", "1"),
        ("b", "1"),
        ("c", None),
        ("d", "2"),
        ("e", None),
    ]
    assert decoder.last_event_id is None


def test_id_with_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    raw = b"id: good\ndata: a\n\nid: ba\x00d\ndata: b\n\n"
    assert [e.id for e in decoder.feed(raw)] == ["good", "good"]
    assert decoder.last_event_id == "good"


def test_id_is_committed_only_when_the_block_ends() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert decoder.last_event_id == "1"
    decoder.feed(b"\n")
    assert decoder.last_event_id == "2"


def test_initial_last_event_id() -> None:
    decoder = SSEDecoder(last_event_id="5")
    assert decoder.last_event_id == "5"
    assert decoder.feed(b"data: a\n\n") == [ServerSentEvent("message", "a", "5")]


def test_retry() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"retry: 1500\ndata: a\n\ndata: b\n\n")
    assert events == [ServerSentEvent("message", "a", None, 1500), ServerSentEvent("message", "b")]
    assert decoder.retry == 1500
    # Only ASCII digits count.
    for bad in (b"retry: 15a0", b"retry: -1", b"retry: 1.5", b"retry:", b"retry", b"retry:  15"):
        assert decoder.feed(bad + b"\ndata: x\n\n") == [ServerSentEvent("message", "x")]
    assert decoder.feed("retry: ١٢\ndata: x\n\n".encode()) == [ServerSentEvent("message", "x")]
    # More digits than int() reads (or any sane delay): ignored, never an error.
    huge = b"retry: " + b"9" * 5000 + b"\ndata: x\n\n"
    assert decoder.feed(huge) == [ServerSentEvent("message", "x")]
    assert decoder.retry == 1500
    # A retry-only block is not dispatched, but the decoder remembers it.
    assert decoder.feed(b"retry: 0\n\n") == []
    assert decoder.retry == 0


def test_flush_discards_an_incomplete_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: partial\n") == [
        ServerSentEvent("message", "a", "1")
    ]
    assert decoder.flush() == []
    assert decoder.last_event_id == "1"
    # The decoder is reusable for the next connection; a BOM is accepted again.
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == [ServerSentEvent("message", "b", "1")]


def test_flush_discards_an_unterminated_line() -> None:
    assert decode([b"data: a\n\ndata: b"]) == [ServerSentEvent("message", "a")]
    assert decode([b"data: a\n\ndata: b\n"]) == [ServerSentEvent("message", "a")]


def test_json_helper() -> None:
    assert ServerSentEvent("done", '{"reason": "canceled"}').json() == {"reason": "canceled"}
    with pytest.raises(StreamError, match="not valid JSON") as info:
        ServerSentEvent("error", "oops").json()
    assert info.value.detail == "oops"


def test_event_is_frozen() -> None:
    event = ServerSentEvent("a", "b")
    with pytest.raises(AttributeError):
        event.data = "c"  # type: ignore[misc]


# --------------------------------------------------------------------------- bounds


def test_oversize_line_in_one_chunk() -> None:
    decoder = SSEDecoder(max_event_size=16)
    with pytest.raises(StreamError, match="exceeds 16"):
        decoder.feed(b"data: " + b"x" * 20 + b"\n\n")


def test_oversize_unterminated_line_across_chunks() -> None:
    decoder = SSEDecoder(max_event_size=16)
    decoder.feed(b"data: 0123456789")
    with pytest.raises(StreamError, match="exceeds 16"):
        decoder.feed(b"x")


def test_oversize_tail_after_a_complete_line() -> None:
    decoder = SSEDecoder(max_event_size=16)
    with pytest.raises(StreamError, match="exceeds 16"):
        decoder.feed(b"data: a\n" + b"y" * 17)


def test_oversize_event_made_of_short_lines() -> None:
    decoder = SSEDecoder(max_event_size=16)
    assert decoder.feed(b"data: 1234\ndata: 1234\ndata: 1234\n") == []
    with pytest.raises(StreamError, match="data exceeds 16"):
        decoder.feed(b"data: 1234\n")


def test_events_up_to_the_limit_pass() -> None:
    decoder = SSEDecoder(max_event_size=16)
    events = decoder.feed(b"data: 12345678\n\n" * 3)
    assert [e.data for e in events] == ["12345678"] * 3


def test_max_event_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SSEDecoder(max_event_size=0)


# --------------------------------------------------------------------------- iter_sse


async def _agen(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_iter_sse() -> None:
    raw = TRANSCRIPTS["succeeded"].encode()
    events = [event async for event in iter_sse(_agen(bytewise(raw)))]
    assert events == EXPECTED["succeeded"]


async def test_iter_sse_with_own_decoder_keeps_state() -> None:
    decoder = SSEDecoder()
    chunks = [b": hi\nid: 9\ndata: a\n\n", b"data: incomplete"]
    events = [event async for event in iter_sse(_agen(chunks), decoder)]
    assert events == [ServerSentEvent("message", "a", "9")]
    assert decoder.last_event_id == "9"
    assert decoder.comments == 1


async def test_iter_sse_propagates_stream_errors() -> None:
    chunks = [b"data: " + b"x" * 100]
    with pytest.raises(StreamError):
        async for _ in iter_sse(_agen(chunks), SSEDecoder(max_event_size=50)):
            pass


# --------------------------------------------------------------------------- properties

_line_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=20
)
_data_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r"), max_size=40
)
_event_specs = st.lists(
    st.tuples(
        st.none() | _line_text,  # event type (None: no `event:` line)
        _data_text,
        st.none() | _line_text.filter(lambda s: "\0" not in s),  # id (None: no `id:` line)
        st.none() | st.integers(min_value=0, max_value=10**12),  # retry
        st.none() | _line_text,  # a comment line
    ),
    max_size=12,
)
Spec = tuple[str | None, str, str | None, int | None, str | None]


def encode(specs: list[Spec], newline: str, bom: bool) -> tuple[bytes, list[ServerSentEvent]]:
    """A tiny encoder, and the events a conformant decoder must return for its output."""
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    for event, data, event_id, retry, comment in specs:
        if comment is not None:
            lines.append(":" + comment)
        if event is not None:
            lines.append("event: " + event)
        if event_id is not None:
            lines.append("id: " + event_id)
            last_id = event_id or None
        if retry is not None:
            lines.append(f"retry: {retry}")
        lines.extend("data: " + part for part in data.split("\n"))
        lines.append("")
        expected.append(ServerSentEvent(event or "message", data, last_id, retry))
    text = "".join(line + newline for line in lines)
    return ("\ufeff" if bom else "").encode() + text.encode(), expected


@settings(max_examples=300, deadline=None)
@given(
    specs=_event_specs,
    newline=st.sampled_from(["\n", "\r", "\r\n"]),
    bom=st.booleans(),
    data=st.data(),
)
def test_roundtrip_any_events_any_chunking(
    specs: list[Spec], newline: str, bom: bool, data: st.DataObject
) -> None:
    raw, expected = encode(specs, newline, bom)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=20))
    assert decode(split_at(raw, cuts)) == expected


def reference_decode(raw: bytes) -> tuple[list[ServerSentEvent], str | None, int | None]:
    """A direct, character-at-a-time transcription of the WHATWG algorithm."""
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[str] = []
    current = ""
    i = 0
    while i < len(text):
        char = text[i]
        if char in "\r\n":
            lines.append(current)
            current = ""
            if char == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1
        else:
            current += char
        i += 1
    events: list[ServerSentEvent] = []
    data_buffer = event_type = id_buffer = last_event_id = ""
    retry: int | None = None
    event_retry: int | None = None
    for line in lines:
        if line == "":
            last_event_id = id_buffer
            if data_buffer:
                events.append(
                    ServerSentEvent(
                        event_type or "message",
                        data_buffer.removesuffix("\n"),
                        last_event_id or None,
                        event_retry,
                    )
                )
            data_buffer = event_type = ""
            event_retry = None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data_buffer += value + "\n"
        elif name == "id":
            if "\0" not in value:
                id_buffer = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = event_retry = int(value)
    return events, last_event_id or None, retry


_sse_ish_bytes = st.lists(
    st.sampled_from(
        [
            *(b"data", b"event", b"id", b"retry", b":", b" ", b"\n", b"\r", b"\r\n", b"\x00"),
            *(b"\xef\xbb\xbf", b"\xf0\x9f", b"\x90\x8d", b"7", b"x", b"\xff"),
        ]
    )
    | st.binary(max_size=4),
    max_size=60,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(raw=_sse_ish_bytes, data=st.data())
def test_matches_reference_on_arbitrary_input(raw: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=10))
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in split_at(raw, cuts):
        events.extend(decoder.feed(chunk))
    expected_events, expected_id, expected_retry = reference_decode(raw)
    assert events == expected_events
    assert decoder.last_event_id == expected_id
    assert decoder.retry == expected_retry


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | _sse_ish_bytes, data=st.data())
def test_arbitrary_bytes_only_raise_stream_error(raw: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=10))
    decoder = SSEDecoder(max_event_size=data.draw(st.integers(min_value=1, max_value=64)))
    try:
        for chunk in split_at(raw, cuts):
            for event in decoder.feed(chunk):
                assert isinstance(event.data, str)
        decoder.flush()
    except StreamError:
        pass


# Pieces that make Replicate's own block shape ("event: ..\nid: ..\ndata: ..\n\n", decoded by
# a fast path) and everything that must stop that path: the shape starting mid-block or
# mid-line, a retry or comment inside, an id with NUL, two data lines, odd names.
_block_pieces = st.lists(
    st.sampled_from(
        [
            b"event: output\nid: 1:0\ndata: hi\n\n",
            b"event: output\nid: 1:1\ndata: \n\n",
            b"event: \nid: \ndata: x\n\n",
            b"event: done\nid: 1:2\ndata: {}\n\n",
            b"event: output\nid: a\x00b\ndata: nul\n\n",
            b"event: a: b\nid: 7\ndata: c: d\n\n",
            *(b"event: output\n", b"id: 9\n", b"data: more\n", b"retry: 5\n", b": ping\n"),
            *(b"\n", b"data: event: x\nid: 2\ndata: y\n\n", b"x", b"event: ", b"\r\n"),
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(raw=_block_pieces, data=st.data())
def test_replicate_block_shape_matches_reference(raw: bytes, data: st.DataObject) -> None:
    """The fast path for Replicate's block shape decodes exactly as the spec, any chunking."""
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=10))
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in split_at(raw, cuts):
        events.extend(decoder.feed(chunk))
    expected_events, expected_id, expected_retry = reference_decode(raw)
    assert events == expected_events
    assert decoder.last_event_id == expected_id
    assert decoder.retry == expected_retry


def test_replicate_block_shape_mid_block_is_not_a_new_event() -> None:
    """The shape found after a retry line, or inside a data line, continues that block."""
    raw = b"retry: 5\nevent: output\nid: 1\ndata: a\n\ndata: event: x\nid: 2\ndata: y\n\n"
    assert decode([raw]) == [
        ServerSentEvent("output", "a", "1", 5),
        ServerSentEvent("message", "event: x\ny", "2"),
    ]


def test_ending_is_set_by_every_feed_that_returns_an_error_or_done() -> None:
    """``ending`` (readers hand a feed's events over as they are when it is False) is True
    whenever the events just returned include an ``error`` or ``done``, wherever the
    stream was cut: the type's line and the blank line ending the block may come in
    different chunks. Text that merely contains the words does not end anything."""
    stream = (
        b"event: output\nid: 1\ndata: done and error\n\n"
        b"event:error\ndata: x\n\n"
        b"event: output\nid: 2\ndata: b\n\n"
        b"event: done\nid: 3\ndata: {}\n\n"
    )
    for first in range(len(stream)):
        for second in range(first, len(stream), 3):
            decoder = SSEDecoder()
            for chunk in (stream[:first], stream[first:second], stream[second:]):
                events = decoder.feed(chunk)
                if any(event.event in ("error", "done") for event in events):
                    assert decoder.ending, (first, second)
    decoder = SSEDecoder()
    assert decoder.feed(b"event: output\nid: 1\ndata: done\n\n")
    assert not decoder.ending
