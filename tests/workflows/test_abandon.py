"""Abandoned runs are canceled on the server, in every phase and however they are abandoned.

(task cancelled, ASGI disconnect, aiohttp disconnect, app shutdown) x (during the
``Prefer: wait`` hold, while polling, while streaming): the fake records exactly one cancel
and the prediction ends ``canceled``. Everything runs over real sockets, with the fake and
the client on one virtual clock: the caller gets control back without virtual time passing,
and a held run is canceled once its hold (``RUN_HOLD`` s) answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from replicate_async import AsyncReplicate, ClientClosedError
from replicate_async.asgi import CancelOnDisconnect
from replicate_async.testing import FakeReplicate, ManualClock
from tests.helpers import eventually, uvicorn_server

from ._virtual import PHASES, cancels, reach, settle, status, virtual_client, virtual_fake, workload


async def _canceled_once(fake: FakeReplicate, client: AsyncReplicate, pid: str) -> None:
    await eventually(lambda: status(fake, pid) == "canceled", timeout=10)
    assert await client.inflight.drain()
    assert cancels(fake, pid) == 1


@pytest.mark.parametrize("phase", PHASES)
async def test_cancelled_task_returns_at_once_and_its_run_is_canceled(phase: str) -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        task = asyncio.ensure_future(workload(client, phase)())
        pid = await reach(fake, clock, phase)
        now = clock.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert clock.monotonic() == now  # control came back with no time passing
        await settle(fake, clock, phase)
        await _canceled_once(fake, client, pid)


@pytest.mark.parametrize("phase", PHASES)
async def test_app_shutdown_cancels_in_flight_runs_and_fails_them_plainly(phase: str) -> None:
    """``client.aclose()`` (an app's shutdown) cancels what is in flight and waits for the
    cancels; the callers get ClientClosedError, not a CancelledError nobody asked for."""
    async with virtual_fake() as (fake, clock):
        client = virtual_client(fake, clock)
        task = asyncio.ensure_future(workload(client, phase)())
        pid = await reach(fake, clock, phase)
        closing = asyncio.ensure_future(client.aclose())
        await settle(fake, clock, phase)
        await asyncio.wait_for(closing, 10)
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(task, 10)
        assert status(fake, pid) == "canceled"  # aclose() waited for the cancel
        assert cancels(fake, pid) == 1


# -- web frameworks: the browser hangs up --------------------------------------------------


@contextlib.asynccontextmanager
async def _raw_request(port: int) -> AsyncIterator[None]:
    """A browser: send one GET over a real socket, and hang up when the block exits."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /generate HTTP/1.1\r\nHost: app.test\r\n\r\n")
    await writer.drain()
    try:
        yield
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _asgi_app(run: Callable[[], Awaitable[Any]]) -> Any:
    """A raw ASGI app (no framework) whose endpoint runs ``run``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await run()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return CancelOnDisconnect(app)


@contextlib.asynccontextmanager
async def _aiohttp(run: Callable[[], Awaitable[Any]]) -> AsyncIterator[int]:
    async def generate(request: web.Request) -> web.Response:
        await run()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/generate", generate)
    # handler_cancellation: aiohttp cancels the handler when its client goes away.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _hang_up_during(
    server: Callable[[Callable[[], Awaitable[Any]]], Any],
    fake: FakeReplicate,
    clock: ManualClock,
    client: AsyncReplicate,
    phase: str,
) -> None:
    async with server(workload(client, phase)) as port, _raw_request(port):
        pid = await reach(fake, clock, phase)
    await eventually(lambda: not client.inflight.busy(), timeout=10)
    await settle(fake, clock, phase)
    await _canceled_once(fake, client, pid)


@pytest.mark.parametrize("phase", PHASES)
async def test_asgi_disconnect_cancels_the_handlers_runs(phase: str) -> None:
    def server(run: Callable[[], Awaitable[Any]]) -> Any:
        return uvicorn_server(_asgi_app(run))

    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        await _hang_up_during(server, fake, clock, client, phase)


@pytest.mark.parametrize("phase", PHASES)
async def test_aiohttp_disconnect_cancels_the_handlers_runs(phase: str) -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        await _hang_up_during(_aiohttp, fake, clock, client, phase)
