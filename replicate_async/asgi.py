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
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["CancelOnDisconnect"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CancelOnDisconnect:
    """ASGI middleware: cancel the endpoint (and so its runs) on ``http.disconnect``.

    The request body still reaches the app as it arrives (one message at a time, with
    backpressure); once it has all been read, the middleware listens for the disconnect.
    Lifespan and websocket scopes pass through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app for one request, cancelling it if the client disconnects first."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        body: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
        gone = asyncio.Event()
        finished = asyncio.Event()
        ours: list[bool] = []

        async def watch() -> None:
            while True:
                message = await receive()
                if message.get("type") == "http.disconnect":
                    gone.set()
                    if not finished.is_set():
                        ours.append(True)
                        task.cancel()
                    return
                await body.put(message)

        async def app_receive() -> Message:
            if gone.is_set() and body.empty():
                return {"type": "http.disconnect"}
            getting = asyncio.ensure_future(body.get())
            hung_up = asyncio.ensure_future(gone.wait())
            try:
                await asyncio.wait({getting, hung_up}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                hung_up.cancel()
                if not getting.done():
                    getting.cancel()
            if getting.done() and not getting.cancelled():
                return getting.result()
            return {"type": "http.disconnect"}

        async def app_send(message: Message) -> None:
            await send(message)
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                finished.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await self.app(scope, app_receive, app_send)
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
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
