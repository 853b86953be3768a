"""Raw responses: ``client.with_raw_response.<resource>.<operation>(...)``.

Any operation called through ``with_raw_response`` returns a :class:`RawResponse` for the
last HTTP response it read (status, headers, request id, elapsed time, retries) and its
typed result through :meth:`RawResponse.parse`. The request path records responses only
while such a call runs (one context variable), so ordinary calls pay nothing else.
"""

from __future__ import annotations

import collections
import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs
from multidict import CIMultiDictProxy

from ..exceptions import request_id_of
from .response import Response

__all__ = [
    "LastResponse",
    "RawResponse",
    "RawResponses",
    "RawStream",
    "captured",
    "namespace_attribute",
    "record",
    "streamed",
]

T = TypeVar("T")
U = TypeVar("U")

#: While a raw call runs: (response, elapsed seconds, attempt number) of each attempt read.
_RECORDED: contextvars.ContextVar[list[tuple[Response, float, int]] | None] = (
    contextvars.ContextVar("replicate_async_raw", default=None)
)


def record(response: Response, elapsed: float, attempt: int) -> None:
    """Keep ``response`` for the raw call in progress, if any (the request path calls it)."""
    recorded = _RECORDED.get()
    if recorded is not None:
        recorded.append((response, elapsed, attempt))


def recording() -> bool:
    """Whether a raw call is in progress in this context."""
    return _RECORDED.get() is not None


@attrs.frozen
class RawResponse(Generic[T]):
    """The last HTTP response of an operation, and its parsed result.

    ``elapsed`` is the last attempt's time on the client's clock; ``retries`` how many
    attempts came before it; ``request_id`` the ``x-request-id`` header, if any.
    """

    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    elapsed: float
    retries: int
    _parsed: T

    @property
    def request_id(self) -> str | None:
        """The server's request id (``X-Request-Id``, ``Request-Id`` or ``CF-Ray``), if any."""
        return request_id_of(self.headers)

    def parse(self) -> T:
        """The operation's typed result (what the plain call returns)."""
        return self._parsed

    def with_parsed(self, parsed: U) -> RawResponse[U]:
        """The same response with another parsed result."""
        return RawResponse(
            self.method, self.url, self.status, self.headers, self.elapsed, self.retries, parsed
        )


class RawResponses:
    """``client.with_raw_response``: the client's namespaces, each operation returning a
    :class:`RawResponse` instead of its result. (Typed loosely: ``parse()`` gives the
    operation's own result type at run time.)"""

    __slots__ = ("_target",)

    def __init__(self, target: object) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return namespace_attribute(self._target, name, _raw_call, RawResponses)


def namespace_attribute(
    target: object,
    name: str,
    wrap: Callable[[Callable[..., Any]], Any],
    again: Callable[[Any], Any],
) -> Any:
    """``target.name`` seen through a namespace wrapper (``with_raw_response``...): an
    operation (a coroutine function) wrapped by ``wrap``, a sub-namespace wrapped again by
    ``again``, plain methods (paginators, streams) and private names as they are."""
    value = getattr(target, name)
    if inspect.iscoroutinefunction(value):
        return wrap(value)
    if callable(value) and inspect.iscoroutinefunction(type(value).__call__):
        # A callable resource (``client.search(...)``): an operation like the others.
        return wrap(value.__call__)
    if callable(value) or name.startswith("_"):
        return value
    return again(value)


async def captured(work: Awaitable[T], what: str = "the call") -> RawResponse[T]:
    """Await ``work`` while recording its responses; its result with the last one."""
    recorded: list[tuple[Response, float, int]] = []
    token = _RECORDED.set(recorded)
    try:
        result = await work
    finally:
        _RECORDED.reset(token)
        last = recorded[-1] if recorded else None
        # Emptied: every loop callback scheduled during the call (aiohttp's timeout timers,
        # cancelled but kept in the loop's heap until they are due, for minutes) holds the
        # context this list was set in; a walk kept several pages' bodies alive that way.
        recorded.clear()
    if last is None:
        raise RuntimeError(f"{what} sent no request to report on")
    response, elapsed, attempt = last
    return RawResponse(
        response.method,
        response.url.split("?", 1)[0],
        response.status,
        response.headers,
        elapsed,
        attempt - 1,
        result,
    )


def streamed(
    method: str, url: str, status: int, headers: CIMultiDictProxy[str], elapsed: float
) -> RawResponse[None]:
    """The raw response of a stream's opening (its body is the stream itself)."""
    return RawResponse(method, url.split("?", 1)[0], status, headers, elapsed, 0, None)


class LastResponse:
    """Where a stream keeps the raw response of its latest (re)connection."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: RawResponse[None] | None = None


class RawStream(AsyncIterator[T]):
    """A stream's items, with ``last_response``: the :class:`RawResponse` that opened its
    latest connection (``None`` until one is open; ``parse()`` gives ``None``, the body
    being the stream itself)."""

    __slots__ = ("_batches", "_last", "_ready")

    def __init__(self, batches: Callable[[LastResponse], AsyncIterator[list[T]]]) -> None:
        # ``batches`` yields the items a list at a time (those of one chunk read): handing
        # them out from a buffer costs no generator step per item.
        self._last = LastResponse()
        self._batches = batches(self._last)
        self._ready: collections.deque[T] = collections.deque()

    @property
    def last_response(self) -> RawResponse[None] | None:
        """The raw response of the latest connection, if one was opened."""
        return self._last.value

    def __aiter__(self) -> RawStream[T]:
        return self

    async def __anext__(self) -> T:
        ready = self._ready
        while not ready:
            ready.extend(await self._batches.__anext__())
        return ready.popleft()

    async def batches(self) -> AsyncIterator[list[T]]:
        """The items a list at a time, as they are read (what ``client.stream()`` hands
        out from); any taken one by one already are not repeated."""
        if self._ready:
            yield list(self._ready)
            self._ready.clear()
        async for batch in self._batches:
            yield batch

    async def aclose(self) -> None:
        """Stop reading and close the connection."""
        self._ready.clear()
        close = getattr(self._batches, "aclose", None)
        if close is not None:
            await close()


def _raw_call(operation: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> RawResponse[Any]:
        return await captured(operation(*args, **kwargs), operation.__qualname__)

    call.__doc__ = operation.__doc__
    call.__name__ = getattr(operation, "__name__", "call")
    return call
