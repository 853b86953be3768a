"""A FakeReplicate on its own event loop in a thread, for synchronous tests
(hypothesis drives blocking HTTP at it) and raw-socket tests."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from replicate_async.testing import FakeReplicate

T = TypeVar("T")


class ThreadedFake:
    """Start with ``with ThreadedFake(**options) as server:``; ``server.fake`` is the fake."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.fake: FakeReplicate | None = None

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with FakeReplicate(**self._options) as fake:
            self.fake = fake
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ThreadedFake:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, func: Callable[[], T]) -> T:
        """Run ``func`` on the fake's loop (to read its state between requests)."""
        assert self._loop is not None
        done = threading.Event()
        out: list[T] = []

        def run() -> None:
            out.append(func())
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)
        return out[0]

    @property
    def port(self) -> int:
        assert self.fake is not None
        return self.fake.port

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        """One blocking request on a fresh connection: ``(status, content type, body)``."""
        assert self.fake is not None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(
                method, path, body=body, headers={**self.fake.auth_headers, **(headers or {})}
            )
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type") or "", resp.read()
        finally:
            conn.close()

    def raw(self, data: bytes, *, shut: bool = False) -> bytes:
        """Send raw bytes; return everything the server answers before closing."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            if shut:
                sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
