"""Helpers shared by every test folder: recorded API examples, the test token, waiting.

Import them from here (``from tests.helpers import example``), never from ``conftest``:
conftest files hold fixtures only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp

from replicate_async._core.watch import Timing, Watch

#: Recorded real API responses (copied from the project's shared/replicate-examples).
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
API = "https://api.replicate.com/v1"
TOKEN = "r8_test_token_0123456789abcdef"


class Watched(NamedTuple):
    """One attempt the client asked its watchdog to watch (the ``watched`` fixture)."""

    #: The attempt's timeouts as the watchdog keeps them.
    timing: Timing
    #: The watch it started; ``None`` when it declined (aiohttp then kept the timeouts).
    watch: Watch | None


def enforced(sent_timeout: aiohttp.ClientTimeout, watched: Watched) -> tuple[Any, float, float]:
    """``(connect, read, total)`` the client enforces on one attempt, from the ``timeout=``
    aiohttp received and what the watchdog was given for it.

    Checks the split on the way: the watch really started, aiohttp was given the connect
    phase only (no ``total``, no ``sock_read``: no timer per request), and the wait for
    the headers is the read timeout (or the total, if shorter).
    """
    timing, watch = watched
    assert watch is not None, "the watchdog declined: aiohttp kept the timeouts"
    assert sent_timeout == timing.connect_only
    assert (sent_timeout.total, sent_timeout.sock_read) == (None, None)
    assert timing.first == min(timing.read, timing.total)
    return sent_timeout.sock_connect, timing.read, timing.total


def example(name: str) -> Any:
    """A recorded API body by file name, without ``.json``."""
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_text())


def example_names() -> list[str]:
    """Every recorded example's name."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.json"))


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, timeout: float = 5.0, every: float = 0.005
) -> None:
    """Let the loop run until ``check()`` holds, polling; TimeoutError after ``timeout`` s.

    For state with no event to wait on (sockets closing, tasks ending, server-side effects).
    """
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def tcp_server(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A bare TCP server on 127.0.0.1 running ``serve`` per connection; yields its port.

    For behaviour no HTTP server would show (malformed answers, dropped keep-alives).
    """
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[int]:
    """Serve the ASGI ``app`` with uvicorn on 127.0.0.1 (a free port); yields the port."""
    import uvicorn  # only the ASGI tests need it

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    try:
        await eventually(lambda: server.started)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
