"""Requests aiohttp's own parser refuses (bad header characters, lines over 8190 bytes...)
answered as problem+json, never echoing the offending line, and logged like the rest."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from ._util import problem

__all__ = ["ParseErrorHook", "install"]

#: Called with the exception and the status sent; records the rejection.
ParseErrorHook = Callable[[BaseException | None, int, str], None]


class _Protocol(RequestHandler):
    """aiohttp's connection handler, with a problem+json ``handle_error``."""

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

    def __call__(self) -> RequestHandler:
        return _Protocol(self, loop=self._loop, **self._kwargs)


def install(runner: web.AppRunner, hook: ParseErrorHook) -> None:
    """Make ``runner``'s server (after ``setup()``) answer parse errors through ``hook``."""
    server = runner.server
    if server is None or type(server) is not web.Server:
        raise RuntimeError("install() needs a set-up AppRunner with a plain web.Server")
    server.__class__ = _Server
    server.fake_hook = hook  # type: ignore[attr-defined]
