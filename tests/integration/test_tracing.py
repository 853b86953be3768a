"""Built-in OpenTelemetry tracing (``AsyncReplicate(tracing=...)``), against the fake over
real sockets, with the SDK's in-memory exporter: a span per call and per attempt, status,
retries, the prediction id, and the trace context sent to the server."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from replicate_async import AsyncReplicate, NotFoundError
from replicate_async.testing import FakeReplicate


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in spans if span.kind == kind]


async def test_a_span_per_call_and_per_attempt_with_retries(
    fake: FakeReplicate, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    fake.faults.add("/v1/predictions/*", method="GET", status=503, times=2)
    async with fake.client(tracing=provider) as client:
        created = await client.predictions.create(version="fake/tokens", input={"prompt": "a"})
        await client.predictions.get(created.id)
    spans = exporter.get_finished_spans()
    calls = _by_kind(spans, SpanKind.INTERNAL)
    attempts = _by_kind(spans, SpanKind.CLIENT)
    assert [s.name for s in calls] == ["replicate POST", "replicate GET"]
    assert [s.name for s in attempts] == ["POST", "GET", "GET", "GET"]
    create, get = calls
    assert create.attributes["replicate.prediction.id"] == created.id
    assert get.attributes["replicate.prediction.id"] == created.id
    assert get.attributes["replicate.attempts"] == 3
    assert get.status.status_code == StatusCode.UNSET
    # The attempts of a call are its children; the retries are marked and the failures red.
    gets = [s for s in attempts if s.parent and s.parent.span_id == get.context.span_id]
    assert [s.attributes.get("http.response.status_code") for s in gets] == [503, 503, 200]
    assert [s.attributes.get("http.request.resend_count") for s in gets] == [None, 1, 2]
    assert [s.status.status_code for s in gets] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert gets[0].attributes["url.full"] == f"{fake.base_url}/predictions/{created.id}"


async def test_the_trace_context_goes_to_the_server(
    fake: FakeReplicate, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    async with fake.client(tracing=provider) as client:
        await client.account.get()
    (attempt,) = _by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    context = attempt.context
    sent = fake.requests[-1].headers["traceparent"]
    assert sent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert context.trace_flags.sampled


async def test_a_failed_call_ends_in_error_with_the_exception(
    fake: FakeReplicate, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    async with fake.client(tracing=provider) as client:
        with pytest.raises(NotFoundError):
            await client.predictions.get("nothere")
    (call,) = _by_kind(exporter.get_finished_spans(), SpanKind.INTERNAL)
    assert call.status.status_code == StatusCode.ERROR
    assert [event.name for event in call.events] == ["exception"]
    assert call.events[0].attributes["exception.type"].endswith("NotFoundError")


async def test_no_tracing_no_spans_no_header(
    fake: FakeReplicate, exporter: InMemorySpanExporter
) -> None:
    async with fake.client() as client:
        await client.account.get()
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in fake.requests[-1].headers


def test_tracing_takes_a_bool_or_a_provider() -> None:
    AsyncReplicate(api_token="r8_x", tracing=True)  # the global provider
    with pytest.raises(TypeError, match="tracing"):
        AsyncReplicate(api_token="r8_x", tracing="yes")


async def test_a_stream_is_one_client_span_for_its_life(
    fake: FakeReplicate, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    async with fake.client(tracing=provider) as client:
        events = [
            event.event async for event in client.stream("fake/tokens", input={"prompt": "a b"})
        ]
    assert events[-1] == "done"
    streams = [
        s
        for s in exporter.get_finished_spans()
        if "/v1/streams/" in str(s.attributes.get("url.full"))
    ]
    (stream,) = streams
    assert stream.kind == SpanKind.CLIENT
    assert stream.attributes["http.response.status_code"] == 200
    assert stream.status.status_code == StatusCode.UNSET
    sent = [r for r in fake.requests if r.path.startswith("/v1/streams/")]
    assert sent[0].headers["traceparent"].split("-")[2] == f"{stream.context.span_id:016x}"
