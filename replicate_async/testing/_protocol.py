"""Requests aiohttp's own parser refuses (bad header characters, lines over 8190 bytes...)
answered as problem+json, never echoing the offending line, and logged like the rest; and
a deadline on every request head: from its first byte, the request line and headers must
arrive within ``head_timeout`` seconds (a client sending one header line a second cannot
hold a connection open), or the fake answers 408 and closes the connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from ._util import problem

__all__ = ["ParseErrorHook", "install"]

#: Called with the exception and the status sent; records the rejection.
ParseErrorHook = Callable[[BaseException | None, int, str], None]


#: The 408 sent when a request head does not arrive in time (the connection then closes).
_HEAD_LATE = json.dumps(
    {"title": "Request timeout", "detail": "The request head did not arrive in time", "status": 408}
).encode()
_HEAD_LATE_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/problem+json\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_HEAD_LATE), _HEAD_LATE)
)


class _Protocol(RequestHandler):
    """aiohttp's connection handler, with a problem+json ``handle_error`` and a deadline
    on each request head."""

    _head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        """Feed aiohttp's parser; start the head deadline at the first byte of a head and
        stop it once the head is complete."""
        super().data_received(data)
        timeout: float | None = getattr(self._manager, "fake_head_timeout", None)
        head_done = bool(getattr(self, "_messages", None))
        busy = bool(getattr(self, "_request_in_progress", False))
        if head_done or busy:
            self._stop_head_timer()
        elif self._head_timer is None and timeout is not None and data:
            self._head_timer = self._loop.call_later(timeout, self._head_late)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        hook: ParseErrorHook | None = getattr(self._manager, "fake_hook", None)
        if hook is not None:
            hook(None, 408, "The request head did not arrive in time")
        transport.write(_HEAD_LATE_RESPONSE)
        self.force_close()
        transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the head deadline with the connection."""
        self._stop_head_timer()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request aiohttp could not parse (or an escaped error) as a problem."""
        if request.writer.output_size > 0:  # a response was already under way
            raise ConnectionError("Response is sent already, cannot send another response")
        if isinstance(exc, LineTooLong):
            status, detail = 413, "The request line or a header is too large"
        elif status >= 500:
            status, detail = 500, "Internal server error"
        else:
            status, detail = 400, "The request is malformed (request line or headers)"
        hook: ParseErrorHook | None = getattr(self._manager, "fake_hook", None)
        if hook is not None:
            hook(exc, status, detail)
        resp = problem(status, detail, title="Bad request" if status < 500 else None)
        resp.force_close()
        return resp


class _Server(web.Server):
    """A ``web.Server`` whose connections use :class:`_Protocol`."""

    fake_hook: ParseErrorHook | None = None
    fake_head_timeout: float | None = None

    def __call__(self) -> RequestHandler:
        return _Protocol(self, loop=self._loop, **self._kwargs)


def install(runner: web.AppRunner, hook: ParseErrorHook, head_timeout: float | None = None) -> None:
    """Make ``runner``'s server (after ``setup()``) answer parse errors through ``hook``,
    and give each request head ``head_timeout`` seconds (``None``: no deadline)."""
    server = runner.server
    if server is None or type(server) is not web.Server:
        raise RuntimeError("install() needs a set-up AppRunner with a plain web.Server")
    server.__class__ = _Server
    server.fake_hook = hook  # type: ignore[attr-defined]
    server.fake_head_timeout = head_timeout  # type: ignore[attr-defined]
