"""Cancel a request's predictions when its HTTP client goes away, in any ASGI framework.

ASGI servers (uvicorn, hypercorn...) report a hang-up as an ``http.disconnect`` message on
the request's ``receive`` channel, but frameworks such as Starlette and FastAPI do not
cancel the endpoint: a run it awaits would go on (and bill) for nobody. Wrap the app::

    from replicate_async.asgi import CancelOnDisconnect

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(CancelOnDisconnect)      # or: app = CancelOnDisconnect(app)

When ``http.disconnect`` arrives before the response is complete, the task running the
endpoint is cancelled, and every ``client.run()`` / ``wait()`` / ``stream()`` it awaits
cancels its prediction on the server (a run still inside its ``Prefer: wait`` hold is
canceled as soon as its id is known, after at most that hold). Written against the raw ASGI
protocol only: no dependency on any framework.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final

__all__ = ["DEFAULT_BODY_BUFFER", "CancelOnDisconnect"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: How many request-body bytes the middleware holds for an app that has not read them yet.
DEFAULT_BODY_BUFFER: Final = 1024 * 1024
_DISCONNECT: Final = "http.disconnect"
#: How long the middleware waits for its listener to stop after the app has returned.
_STOP_WAIT: Final = 1.0


class CancelOnDisconnect:
    """ASGI middleware: cancel the endpoint (and so its runs) on ``http.disconnect``.

    The middleware itself keeps reading the server's ``receive`` channel, whatever the app
    reads, so the hang-up is seen even while the app leaves a multi-message body unread:
    body messages wait for the app in a buffer of at most ``max_body_buffer`` bytes (past
    that, reading pauses until the app takes some, which is the server's own
    backpressure). A ``receive()`` that raises or returns something other than an
    ``http.request`` / ``http.disconnect`` message counts as a disconnect (the app then
    gets ``http.disconnect``). Lifespan and websocket scopes pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, max_body_buffer: int = DEFAULT_BODY_BUFFER) -> None:
        if isinstance(max_body_buffer, bool) or not isinstance(max_body_buffer, int):
            raise TypeError("max_body_buffer must be an int (bytes)")
        if max_body_buffer < 0:
            raise ValueError("max_body_buffer must be >= 0")
        self.app = app
        self.max_body_buffer = max_body_buffer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app for one request, cancelling it if the client disconnects first."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        inbox = _Inbox(self.max_body_buffer)
        finished = asyncio.Event()
        ours: list[bool] = []

        async def watch() -> None:
            await inbox.fill(receive)
            if not finished.is_set():
                ours.append(True)
                task.cancel()

        async def app_send(message: Message) -> None:
            await send(message)
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                finished.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await self.app(scope, inbox.take, app_send)
        except asyncio.CancelledError:
            # Our own cancellation (the client hung up) ends the request quietly; any
            # other cancellation (server shutdown) goes on.
            if not ours or task.uncancel() > 0:
                raise
        else:
            if ours:  # the app swallowed our cancellation: do not leave it pending
                task.uncancel()
        finally:
            finished.set()
            await _stop(watcher)


class _Inbox:
    """The request's messages between the server's ``receive`` and the app's."""

    __slots__ = ("_changed", "_limit", "_messages", "_room", "_size", "gone")

    def __init__(self, limit: int) -> None:
        self._messages: deque[Message] = deque()
        self._size = 0
        self._limit = limit
        self._changed = asyncio.Event()  # a message arrived, or the client went away
        self._room = asyncio.Event()  # the buffer is below its limit
        self._room.set()
        self.gone = False

    async def fill(self, receive: Receive) -> None:
        """Read the server's channel until the client goes away (or the channel breaks)."""
        try:
            while True:
                try:
                    message = await receive()
                except Exception:  # a broken channel: the request cannot go on either
                    return
                size = _body_size(message)
                if size is None:  # http.disconnect, or a malformed message
                    return
                self._messages.append(message)
                self._size += size
                self._changed.set()
                if self._size > self._limit:
                    self._room.clear()
                    await self._room.wait()
        finally:
            self.gone = True
            self._changed.set()

    async def take(self) -> Message:
        """The app's ``receive``: the next buffered message, then ``http.disconnect``."""
        while True:
            if self._messages:
                message = self._messages.popleft()
                self._size -= _body_size(message) or 0
                if self._size <= self._limit:
                    self._room.set()
                return message
            if self.gone:
                return {"type": _DISCONNECT}
            self._changed.clear()
            await self._changed.wait()


def _body_size(message: Any) -> int | None:
    """The body size of a well-formed ``http.request`` message; ``None`` for anything else."""
    if not isinstance(message, Mapping) or message.get("type") != "http.request":
        return None
    body = message.get("body", b"")
    if not isinstance(body, bytes | bytearray | memoryview):
        return None
    return len(body)


async def _stop(watcher: asyncio.Future[None]) -> None:
    """Cancel the listener and wait for it, bounded (a ``receive`` may ignore
    cancellation); its outcome is retrieved, so nothing reaches the loop's handler."""
    watcher.cancel()
    try:
        await asyncio.wait((watcher,), timeout=_STOP_WAIT)
    finally:
        watcher.add_done_callback(_quiet)  # runs at once (soon) when already done


def _quiet(watcher: asyncio.Future[None]) -> None:
    if not watcher.cancelled():
        watcher.exception()  # retrieved: nothing for the loop's exception handler
