"""Lazy bodies: ``client.with_streaming_response.<resource>.<operation>(...)``.

Such a call returns an async context manager. Entering it sends the operation's request
and hands over a :class:`StreamedResponse` as soon as the status and headers are in (an
error status raises the usual typed error there); the body is read only when asked
(``read``, ``iter_bytes``, ``text``, ``json``, ``parse``), and the connection is released
when the block exits.

How: the operation runs once with a context variable set, and its one request is not sent
but handed here (the request path raises :class:`_Deferred` right after it has built the
request: options merged, headers and token set). This module opens that request with
:meth:`HTTPCore.stream`. ``parse()`` reads the body, then runs the operation again with the
read response replayed to its request, so the operation's own decoding builds the result.
A lazy request is sent once: never retried.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from .._converter import loads
from ..exceptions import request_id_of
from .raw import namespace_attribute
from .response import Response

#: What opens a deferred request: the request path's ``HTTPCore.stream`` (bound), given
#: the method, URL and the keyword arguments ``headers``, ``params`` and ``data``.
Opener = Callable[..., AbstractAsyncContextManager[aiohttp.ClientResponse]]


__all__ = ["StreamedResponse", "StreamingResponses", "intercept"]


class _Deferred(BaseException):
    """Carries a built request out of the operation (a BaseException: no ``except
    Exception`` in between may swallow it)."""

    def __init__(
        self, opener: Opener, method: str, url: str, params: Any, content: Any, headers: Any
    ) -> None:
        super().__init__(method, url)
        self.opener, self.method, self.url = opener, method, url
        self.params, self.content, self.headers = params, content, headers


#: While a lazy call runs: ``None`` to defer its request, else the response to replay.
_MODE: contextvars.ContextVar[list[Response | None] | None] = contextvars.ContextVar(
    "replicate_async_streaming", default=None
)


def intercept(
    opener: Opener,
    method: str,
    url: str,
    params: Mapping[str, str] | None,
    content: Any,
    headers: dict[str, str],
) -> Response | None:
    """Called by the request path with a built request: ``None`` (send it as usual) unless
    a lazy call is in progress, which either takes the request (raising) or gets the
    response it already read back."""
    mode = _MODE.get()
    if mode is None:
        return None
    if mode:
        return mode.pop()  # the replay: once, for the operation's first request
    raise _Deferred(opener, method, url, params, content, headers)


class StreamedResponse:
    """An HTTP response whose body has not been read yet.

    ``status``, ``headers``, ``request_id``, ``method`` and ``url`` are there at once;
    :meth:`read`, :meth:`iter_bytes`, :meth:`text` and :meth:`json` read the body (once),
    :meth:`parse` gives the operation's typed result (what the plain call returns).
    """

    def __init__(
        self, response: aiohttp.ClientResponse, method: str, replay: Callable[[], Awaitable[Any]]
    ) -> None:
        self._response = response
        self._replay = replay
        self._body: bytes | None = None
        self.method = method
        self.url = str(response.url).split("?", 1)[0]
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    @property
    def request_id(self) -> str | None:
        """The server's request id (``X-Request-Id``, ``Request-Id`` or ``CF-Ray``)."""
        return request_id_of(self.headers)

    @property
    def consumed(self) -> bool:
        """True once the body was read (by any of the reading methods)."""
        return self._body is not None or self._response.content.at_eof()

    async def read(self) -> bytes:
        """The whole body (read once, then kept)."""
        if self._body is None:
            if self.consumed:
                raise RuntimeError("the body was already streamed with iter_bytes()")
            self._body = await self._response.read()
        return self._body

    async def iter_bytes(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes, as they arrive."""
        if self._body is not None:
            for start in range(0, len(self._body), chunk_size):
                yield self._body[start : start + chunk_size]
            return
        async for chunk in self._response.content.iter_chunked(chunk_size):
            yield chunk

    async def text(self) -> str:
        """The body as UTF-8 text (invalid bytes replaced)."""
        return (await self.read()).decode(errors="replace")

    async def json(self) -> Any:
        """The body decoded as JSON."""
        return loads(await self.read())

    async def parse(self) -> Any:
        """The operation's typed result, decoded from the body."""
        await self.read()
        return await self._replay()

    def _as_response(self) -> Response:
        assert self._body is not None
        return Response(self.method, str(self._response.url), self.status, self.headers, self._body)


class _LazyCall:
    """``async with`` one lazy operation call."""

    def __init__(self, operation: Callable[..., Awaitable[Any]], args: Any, kwargs: Any) -> None:
        self._operation, self._args, self._kwargs = operation, args, kwargs
        self._opened: AbstractAsyncContextManager[aiohttp.ClientResponse] | None = None

    async def __aenter__(self) -> StreamedResponse:
        token = _MODE.set([])
        try:
            await self._operation(*self._args, **self._kwargs)
        except _Deferred as deferred:
            request = deferred
        else:
            raise RuntimeError(f"{self._operation.__qualname__} sent no request to stream")
        finally:
            _MODE.reset(token)
        content = request.content
        body = await content() if callable(content) else content
        opened = request.opener(
            request.method, request.url, headers=request.headers, params=request.params, data=body
        )
        response = await opened.__aenter__()
        self._opened = opened
        streamed: StreamedResponse

        async def replay() -> Any:
            token = _MODE.set([streamed._as_response()])
            try:
                return await self._operation(*self._args, **self._kwargs)
            finally:
                _MODE.reset(token)

        streamed = StreamedResponse(response, request.method, replay)
        return streamed

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.__aexit__(exc_type, exc, tb)


class StreamingResponses:
    """``client.with_streaming_response``: the client's namespaces, each operation
    returning an async context manager over a :class:`StreamedResponse`::

        async with client.with_streaming_response.files.get(file_id) as response:
            print(response.status, response.headers["content-type"])
            file = await response.parse()
    """

    __slots__ = ("_target",)

    def __init__(self, target: object) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return namespace_attribute(self._target, name, _lazy, StreamingResponses)


def _lazy(operation: Callable[..., Awaitable[Any]]) -> Callable[..., _LazyCall]:
    def call(*args: Any, **kwargs: Any) -> _LazyCall:
        return _LazyCall(operation, args, kwargs)

    call.__doc__ = operation.__doc__
    call.__name__ = getattr(operation, "__name__", "call")
    return call
