"""Fake servers for command-line tests: one in a background thread, one in a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from replicate_async.testing import FakeReplicate

T = TypeVar("T")

#: The installed console script, next to this interpreter.
CONSOLE_SCRIPT = Path(sys.executable).with_name("replicate-async")


class ThreadedFake:
    """A :class:`FakeReplicate` on its own event loop in a daemon thread.

    The tests' own code (click's runner, ``asyncio.run``) then runs on the main thread
    exactly as a user's shell would run it. ``call`` runs a function on the fake's loop.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-replicate", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._fake: FakeReplicate | None = None
        self._error: BaseException | None = None

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with FakeReplicate(**self._options) as fake:
            self._fake = fake
            self._ready.set()
            await self._stop.wait()

    def start(self) -> ThreadedFake:
        """Start and wait (bounded) until the server listens."""
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the fake server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Stop the server and its loop."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def fake(self) -> FakeReplicate:
        """The running fake (touch its state only through :meth:`call`)."""
        assert self._fake is not None
        return self._fake

    @property
    def env(self) -> dict[str, str]:
        """``REPLICATE_BASE_URL`` and ``REPLICATE_API_TOKEN`` for this fake."""
        return {"REPLICATE_BASE_URL": self.fake.base_url, "REPLICATE_API_TOKEN": self.fake.token}

    def call(self, fn: Callable[[FakeReplicate], T]) -> T:
        """Run ``fn(fake)`` on the fake's loop and return its result."""
        assert self._loop is not None

        async def run() -> T:
            return fn(self.fake)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)


class FakeServerProcess:
    """``replicate-async fake-server`` in a subprocess; reads the URL it prints."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.env: dict[str, str] = {}
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> FakeServerProcess:
        """Start and read the announced environment (bounded by a timeout)."""
        self.process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "fake-server", "--port", "0", *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        timer = threading.Timer(20, self.process.kill)
        timer.start()
        try:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("export "):
                    name, _, value = line.removeprefix("export ").strip().partition("=")
                    self.env[name] = value
                if "REPLICATE_API_TOKEN" in self.env and "REPLICATE_BASE_URL" in self.env:
                    break
        finally:
            timer.cancel()
        if len(self.env) != 2:
            raise RuntimeError(f"fake-server did not announce itself: {self.lines}")
        return self

    def stop(self) -> int:
        """SIGTERM, then wait; return the exit status."""
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
        return self.process.returncode


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without any real Replicate settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    env.update(extra or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env
