"""Webhook receivers inside the test process: an ASGI app or an aiohttp application."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol

from aiohttp import web
from yarl import URL

__all__ = ["AsgiTarget", "AiohttpTarget", "Target", "make_target"]

AsgiApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


class Target(Protocol):
    """Something webhook deliveries can be posted to without leaving the process."""

    async def post(self, url: URL, headers: Mapping[str, str], body: bytes) -> int:
        """Deliver one request; return the HTTP status the receiver answered."""

    async def aclose(self) -> None:
        """Release what the target holds."""


class AsgiTarget:
    """Calls an ASGI 3 application directly (one ``http`` request, no sockets)."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def post(self, url: URL, headers: Mapping[str, str], body: bytes) -> int:
        """Run the app on one POST request and return its response status."""
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": url.scheme or "http",
            "path": url.path,
            "raw_path": url.raw_path.encode(),
            "query_string": url.raw_query_string.encode(),
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 0),
            "server": (url.host or "localhost", url.port or 80),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> MutableMapping[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))

        await self.app(scope, receive, send)
        if not status:
            raise RuntimeError("the ASGI app sent no response")
        return status[0]

    async def aclose(self) -> None:
        """Nothing to release."""


class AiohttpTarget:
    """Serves an ``aiohttp.web.Application`` on a free 127.0.0.1 port, started lazily,
    and posts to it there."""

    def __init__(self, app: web.Application, post: Callable[..., Awaitable[int]]) -> None:
        self.app = app
        self._post = post
        self._runner: web.AppRunner | None = None
        self._origin = URL()
        self._lock = asyncio.Lock()

    async def post(self, url: URL, headers: Mapping[str, str], body: bytes) -> int:
        """Forward the delivery to the app's own loopback port."""
        async with self._lock:
            if self._runner is None:
                runner = web.AppRunner(self.app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                self._runner = runner
                self._origin = URL(f"http://127.0.0.1:{runner.addresses[0][1]}")
        target = self._origin.with_path(url.path).with_query(url.query)
        return await self._post(target, headers, body)

    async def aclose(self) -> None:
        """Stop the app's server."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def make_target(app: Any, post: Callable[..., Awaitable[int]]) -> Target:
    """Wrap an aiohttp ``Application`` or an ASGI callable."""
    if isinstance(app, web.Application):
        return AiohttpTarget(app, post)
    if callable(app):
        return AsgiTarget(app)
    raise TypeError("deliver webhooks to an aiohttp web.Application or an ASGI app")
