"""Tools for the reliability suite: virtual time, a second origin, socket meters, stubs.

Nothing here sleeps for real to make a test pass: waits the SDK asks for go through
:class:`~replicate_async.testing.ManualClock` (``auto_advance=True``), and every server
is a local one whose behaviour is scripted.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from replicate_async.testing import FakeReplicate
from tests.helpers import tcp_server

__all__ = [
    "LoopErrors",
    "OtherServer",
    "Seen",
    "ServerMeter",
    "StubSession",
    "chain",
    "closed_port",
    "open_client_objects",
    "raw_http_server",
]


def closed_port() -> int:
    """A local TCP port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything chained under it (``__cause__``/``__context__``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# -- a second origin ----------------------------------------------------------------------


@dataclass(slots=True)
class Seen:
    """One request a local server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _ok(_request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"payload from another origin", content_type="image/png")


class OtherServer:
    """A second local HTTP server: same host, another port, so another origin.

    Records every request with its headers (to prove what was, and was not, sent to
    it); answers with :attr:`handler` (200 with a small body by default).
    """

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.handler: Handler = _ok
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> OtherServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                body,
            )
        )
        return await self.handler(request)


@asynccontextmanager
async def raw_http_server(answer: bytes) -> AsyncIterator[int]:
    """A TCP server answering every request with ``answer`` verbatim (malformed HTTP)."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async with tcp_server(reply) as port:
        yield port


# -- measuring the fake's sockets ---------------------------------------------------------


class ServerMeter:
    """Counts the client connections and requests a :class:`FakeReplicate` is serving.

    Installed on ``fake.app`` before the fake starts (an inner middleware), so it sees
    every request that reaches a handler: which TCP connection it came on, and how many
    are in progress. ``peak_open`` is the most connections open at the same time (a
    connection counts from its first request until its transport closes).
    """

    def __init__(self, fake: FakeReplicate) -> None:
        self.open: set[asyncio.BaseTransport] = set()
        self.total = 0
        self.peak_open = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.handled = 0
        fake.app.middlewares.append(self._middleware)

    def open_now(self) -> int:
        """Connections whose transport is still open (closed ones are forgotten)."""
        self.open = {t for t in self.open if not t.is_closing()}
        return len(self.open)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        transport = request.transport
        if transport is not None and transport not in self.open:
            self.open.add(transport)
            self.total += 1
            self.peak_open = max(self.peak_open, self.open_now())
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self.in_flight -= 1
            self.handled += 1


# -- the event loop's error reports -------------------------------------------------------


class LoopErrors:
    """Records what reaches the loop's exception handler ("Task exception was never
    retrieved", "Unclosed connection", exceptions in callbacks...)."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)

    @property
    def messages(self) -> list[str]:
        return [f"{c.get('message')}: {c.get('exception')!r}" for c in self.contexts]


# -- a stub aiohttp session (unit level: no sockets) -----------------------------------------


class _WholeBody:
    """A response's ``content`` whose body has all arrived (as a small JSON answer's has)."""

    def is_eof(self) -> bool:
        return True


@dataclass
class _StubResponse:
    status: int
    url: URL
    body: bytes
    headers: CIMultiDictProxy[str] = field(
        default_factory=lambda: CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
    )

    content: _WholeBody = field(default_factory=_WholeBody)

    async def read(self) -> bytes:
        return self.body


class _StubRequest:
    def __init__(self, response: _StubResponse) -> None:
        self._response = response

    async def __aenter__(self) -> _StubResponse:
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        return None


class StubSession:
    """Stands in for ``aiohttp.ClientSession`` (borrowed by the client) without sockets.

    Each request is recorded as the :class:`yarl.URL` aiohttp itself would build from
    the string the SDK passes (so a URL the SDK's checks and yarl read differently is
    caught), with its headers; ``answer`` maps each request to ``(status, body)``.
    """

    closed = False

    def __init__(self, answer: Callable[[URL, Mapping[str, str]], tuple[int, bytes]]) -> None:
        self.answer = answer
        self.sent: list[tuple[str, URL, dict[str, str]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> _StubRequest:
        built = URL(url)
        params = kwargs.get("params")
        if params:
            built = built.update_query(params)
        headers = dict(kwargs.get("headers") or {})
        self.sent.append((method, built, headers))
        status, body = self.answer(built, headers)
        return _StubRequest(_StubResponse(status, built, body))

    async def close(self) -> None:
        self.closed = True


def as_session(stub: StubSession) -> aiohttp.ClientSession:
    """The stub, typed as the session the client accepts."""
    session: aiohttp.ClientSession = stub  # type: ignore[assignment]
    return session


def open_client_objects() -> list[object]:
    """aiohttp responses not yet released, and pool connections still checked out.

    After every request has finished, both must be empty: anything here is a response
    or connection the SDK left open (aiohttp only warns about responses in debug mode).
    """
    gc.collect()
    return [
        obj
        for obj in gc.get_objects()
        if (isinstance(obj, aiohttp.ClientResponse) and not obj.closed)
        or (isinstance(obj, aiohttp.connector.Connection) and not obj.closed)
    ]
