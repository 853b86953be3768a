"""OpenTelemetry spans, built in and opt-in: ``AsyncReplicate(tracing=True)``.

Each call of the request path is one span (``replicate <METHOD>``, kind INTERNAL), and each
HTTP attempt under it one span (``<METHOD>``, kind CLIENT, with the HTTP semantic
conventions' attributes), so retries show as sibling attempts under one call. The attempt
carries the W3C trace context to the server (``traceparent``, through the application's
configured propagator). The call span records the attempts made, the prediction or
training id when there is one, and ends in error with the exception when the call fails.

``opentelemetry-api`` is imported only when tracing is asked for (``pip install
"replicate-async[otel]"``); the base install does not need it. Spans go to the global
tracer provider (``tracing=True``) or to the one passed (``tracing=provider``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .._converter import loads
from .._version import __version__
from ..exceptions import APIStatusError
from .errors import safe_url

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["Tracing", "make_tracing"]

T = TypeVar("T")

#: ``.../predictions/<id>`` or ``.../trainings/<id>`` (and ``/cancel``): the run's id.
_RUN_ID = re.compile(r"/(predictions|trainings)/([^/?]+)(?:/cancel)?(?:\?|$)")


def make_tracing(tracing: object) -> Tracing | None:
    """``None`` for ``tracing=False``; else the spans' source (``True``: the global
    provider; otherwise ``tracing`` is a ``TracerProvider``)."""
    if tracing is False or tracing is None:
        return None
    try:
        from opentelemetry import trace
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            'tracing=True needs OpenTelemetry: pip install "replicate-async[otel]"'
        ) from exc
    if tracing is True:
        return Tracing(trace.get_tracer("replicate_async", __version__))
    get_tracer = getattr(tracing, "get_tracer", None)
    if get_tracer is None:
        raise TypeError(f"tracing must be a bool or a TracerProvider, got {tracing!r:.60}")
    return Tracing(get_tracer("replicate_async", __version__))


class Tracing:
    """Starts the call and attempt spans for the request path."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import propagate, trace

        self._tracer = tracer
        self._inject = propagate.inject
        self._trace = trace

    async def call(self, call: Any, send: Awaitable[T]) -> T:
        """Run ``send`` (the whole call, retries included) inside the call span."""
        trace = self._trace
        url = safe_url(call.url)
        attributes = {"http.request.method": call.method, "url.full": url}
        with self._tracer.start_as_current_span(
            f"replicate {call.method}",
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            found = _RUN_ID.search(url)
            if found:
                span.set_attribute(f"replicate.{found.group(1)[:-1]}.id", found.group(2))
            result = await send
            if call.method == "POST" and url.endswith(("/predictions", "/trainings")):
                _created_id(span, result)
            return result

    async def attempt(self, call: Any, attempt: int, send: Callable[[Any, int], Awaitable[T]]) -> T:
        """One HTTP attempt of ``call`` in its own span, with ``traceparent`` sent along."""
        trace = self._trace
        method, url = call.method, safe_url(call.url)
        parent = trace.get_current_span()
        parent.set_attribute("replicate.attempts", attempt)
        attributes: dict[str, Any] = {"http.request.method": method, "url.full": url}
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        with self._tracer.start_as_current_span(
            method, kind=trace.SpanKind.CLIENT, attributes=attributes, record_exception=True
        ) as span:
            headers = dict(call.headers)
            self._inject(headers)
            try:
                response = await send(call._replace(headers=headers), attempt)
            except APIStatusError as exc:
                span.set_attribute("http.response.status_code", exc.status)
                span.set_attribute("error.type", str(exc.status))
                span.set_status(trace.Status(trace.StatusCode.ERROR))
                raise
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(trace.Status(trace.StatusCode.ERROR))
                raise
            span.set_attribute("http.response.status_code", getattr(response, "status", 0))
            return response

    @contextlib.contextmanager
    def stream(self, method: str, url: str, headers: dict[str, str]) -> Iterator[Span]:
        """A span for a response read incrementally (SSE, a download), for as long as it is
        open; ``traceparent`` is added to ``headers``. Leaving early is not an error."""
        trace = self._trace
        attributes = {"http.request.method": method, "url.full": safe_url(url)}
        span = self._tracer.start_span(method, kind=trace.SpanKind.CLIENT, attributes=attributes)
        # Not made current: a stream may be closed from another context than its opener's.
        self._inject(headers, context=trace.set_span_in_context(span))
        try:
            yield span
        except APIStatusError as exc:
            span.set_attribute("http.response.status_code", exc.status)
            _failed(span, trace, exc)
            raise
        except Exception as exc:
            _failed(span, trace, exc)
            raise
        finally:
            span.end()


def _failed(span: Span, trace: Any, exc: Exception) -> None:
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(trace.Status(trace.StatusCode.ERROR))


def _created_id(span: Span, response: object) -> None:
    """The id of the prediction or training a create made, on the call span."""
    try:
        data = loads(getattr(response, "content", b""))
    except ValueError:
        return
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        kind = "training" if "destination" in data else "prediction"
        span.set_attribute(f"replicate.{kind}.id", data["id"])
