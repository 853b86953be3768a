"""``CancelOnDisconnect`` sees the hang-up whatever the app reads, and never hangs on a
broken ``receive`` channel: a fuzz of ``receive()`` behaviours, and uvicorn over a real
socket with a multi-message body the app leaves unread."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replicate_async.asgi import CancelOnDisconnect
from tests.helpers import eventually, uvicorn_server

SCOPE = {"type": "http", "method": "POST", "path": "/generate", "headers": []}

#: One step of a server's ``receive`` channel: what the next call does.
Step = tuple[str, Any]
#: Steps after which the middleware must treat the client as gone.
GONE = {"disconnect", "raise", "garbage"}
GARBAGE: list[Any] = [
    None,
    42,
    "http.disconnect",
    [],
    {},
    {"type": None},
    {"type": "websocket.receive"},
    {"type": "http.request", "body": "text, not bytes"},
    {"type": "http.request", "body": None},
]
steps = st.one_of(
    st.tuples(st.just("body"), st.tuples(st.integers(0, 4096), st.booleans())),
    st.tuples(st.just("disconnect"), st.none()),
    st.tuples(st.just("raise"), st.sampled_from([RuntimeError, OSError, KeyError, ValueError])),
    st.tuples(st.just("garbage"), st.sampled_from(GARBAGE)),
    st.tuples(st.just("yield"), st.none()),
    st.tuples(st.just("block"), st.none()),
)


def _receive(script: list[Step]) -> Any:
    """A ``receive`` following ``script``, then silent forever (a client that stays)."""
    pending = list(script)

    async def receive() -> Any:
        while pending:
            what, arg = pending.pop(0)
            if what == "yield":
                await asyncio.sleep(0)
                continue
            if what == "body":
                size, more = arg
                return {"type": "http.request", "body": b"x" * size, "more_body": more}
            if what == "disconnect":
                return {"type": "http.disconnect"}
            if what == "raise":
                raise arg("the server's channel broke")
            if what == "garbage":
                return arg
            break  # "block"
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def _outcome(script: list[Step]) -> tuple[bool, int]:
    """Whether the client is gone by the script, and how many body messages come first."""
    bodies = 0
    for what, _ in script:
        if what in GONE:
            return True, bodies
        if what == "block":
            return False, bodies
        bodies += what == "body"
    return False, bodies


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=st.lists(steps, max_size=8), reads=st.integers(0, 4))
def test_receive_fuzz_never_hangs_and_a_hang_up_cancels(script: list[Step], reads: int) -> None:
    """Whatever ``receive()`` does (bodies the app never reads, exceptions, malformed
    messages, silence), the request ends: cancelled when the client is gone (a disconnect,
    a failing or malformed receive), completed otherwise."""
    gone, bodies = _outcome(script)
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            for _ in range(reads if gone else min(reads, bodies)):
                message = await receive()
                assert isinstance(message, dict)
                assert message["type"] in ("http.request", "http.disconnect")
                if message["type"] == "http.disconnect":
                    assert gone
                    break
            if gone:
                await asyncio.Event().wait()  # a long run: only the hang-up ends it
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        seen.append("answered")

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def scenario() -> None:
        async with asyncio.timeout(5):  # a hang fails the example instead of the run
            await CancelOnDisconnect(app)(dict(SCOPE), _receive(script), send)

    asyncio.run(scenario())
    if gone:
        assert seen == ["cancelled"]
        assert sent == []
    else:
        assert seen == ["answered"]
        assert len(sent) == 2


async def test_an_unread_multi_message_body_does_not_hide_the_disconnect() -> None:
    """The app never reads the body (3 messages); the disconnect after it still cancels."""
    script: list[Step] = [("body", (10, True)), ("body", (10, True)), ("body", (10, False))]
    script.append(("disconnect", None))
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent")

    async with asyncio.timeout(5):
        await CancelOnDisconnect(app)(dict(SCOPE), _receive(script), send)
    assert cancelled.is_set()


async def test_the_buffer_is_bounded_and_the_app_still_gets_every_byte() -> None:
    """Past ``max_body_buffer`` the middleware stops reading until the app reads (the
    server's backpressure); the app then receives the whole body, in order."""
    chunks = [bytes([65 + n]) * 100 for n in range(10)]
    script: list[Step] = [("body", (100, n < 9)) for n in range(10)]
    calls = 0
    inner = _receive(script)

    async def receive() -> Any:
        nonlocal calls
        calls += 1
        message = await inner()
        message["body"] = chunks[calls - 1]
        return message

    got: list[bytes] = []
    ready = asyncio.Event()

    async def app(scope: Any, app_receive: Any, send: Any) -> None:
        await ready.wait()
        while True:
            message = await app_receive()
            got.append(message["body"])
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        pass

    async with asyncio.timeout(5):
        call = asyncio.ensure_future(
            CancelOnDisconnect(app, max_body_buffer=250)(dict(SCOPE), receive, send)
        )
        await eventually(lambda: calls >= 3)
        for _ in range(20):
            await asyncio.sleep(0)
        assert calls == 3  # 300 bytes buffered > 250: reading paused for the app
        ready.set()
        await call
    assert got == chunks


def test_bad_buffer_sizes_are_refused() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(TypeError):
        CancelOnDisconnect(app, max_body_buffer=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CancelOnDisconnect(app, max_body_buffer=-1)


# -- uvicorn over a real socket -------------------------------------------------------------


async def test_uvicorn_hang_up_after_an_unread_chunked_body_cancels_the_endpoint() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a long run; the body is never read
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with uvicorn_server(CancelOnDisconnect(app)) as port:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /generate HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for n in range(3):
            writer.write(b"400\r\n" + bytes([97 + n]) * 1024 + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(10):
            await started.wait()
            await asyncio.sleep(0.05)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            await cancelled.wait()
