"""Real servers for the Redis tests: a ``redis-server`` and a fake API, each its own process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Why the Redis tests are skipped when the server is missing.
MISSING = (
    "redis-server is not installed (Debian package 'redis-server'; .ci/run installs it), "
    "so the multi-worker Redis tests cannot run here"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` on 127.0.0.1 with no persistence, stoppable and restartable."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="redis-test-")
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: list[str] = []

    def start(self) -> None:
        args = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", *self.extra]
        args += ["--save", "", "--appendonly", "no", "--dir", self._dir, "--loglevel", "warning"]
        args += ["--enable-debug-command", "yes"]  # DEBUG SLEEP: the stall tests
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process is not None and process.stderr is not None:
            process.stderr.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    async def cli(self, *args: str, timeout: float = 30) -> str:
        """``redis-cli`` against this server (its own connection; bounded)."""
        cli = shutil.which("redis-cli") or "redis-cli"
        done = await asyncio.to_thread(
            subprocess.run,
            [cli, "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return done.stdout

    def signal(self, number: int) -> None:
        """Send a signal to the server (SIGSTOP/SIGCONT: pause and resume it)."""
        assert self.process is not None
        os.kill(self.process.pid, number)


class RedisCluster:
    """Three ``redis-server --cluster-enabled yes`` masters joined by ``redis-cli --cluster
    create`` (no replicas): the smallest real Redis Cluster."""

    def __init__(self, executable: str) -> None:
        self.nodes = [RedisServer(executable) for _ in range(3)]
        for node in self.nodes:
            node.port = _cluster_port()  # its bus listens on port + 10000: keep both free
            node.url = f"redis://127.0.0.1:{node.port}/0"
            node.extra = ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]
        self.url = self.nodes[0].url.removesuffix("/0")

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli") or "redis-cli"
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every node agrees the slots are covered
            states = [
                subprocess.run(
                    [cli, "-p", str(node.port), "CLUSTER", "INFO"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=True,
                ).stdout
                for node in self.nodes
            ]
            if all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok within 30 s")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def _cluster_port() -> int:
    """A free port below 55536 whose cluster bus port (+10000) is free too."""
    for port in random.sample(range(20000, 30000), 200):
        try:
            with socket.socket() as one, socket.socket() as two:
                one.bind(("127.0.0.1", port))
                two.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def redis_executable() -> str | None:
    return shutil.which("redis-server")


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("REPLICATE_API_TOKEN", None)
    return env


class FakeProcess:
    """``tests.redis._fake_proc``: one FakeReplicate in a child process, driven by stdin."""

    def __init__(self, **options: Any) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.redis._fake_proc", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=python_env(),
        )
        ready = self._line()
        assert ready["ready"], ready
        self.base_url: str = ready["base_url"]
        self.token: str = ready["token"]

    def _line(self, timeout: float = 60) -> dict[str, Any]:
        assert self.process.stdout is not None
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reading = pool.submit(self.process.stdout.readline)
            try:
                line = reading.result(timeout)  # bounded: a stuck fake fails the test
            except concurrent.futures.TimeoutError:
                self.process.kill()
                raise
        if not line:
            raise RuntimeError("the fake server process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, **command: Any) -> dict[str, Any]:
        """Send one command (see ``_fake_proc``); its JSON answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()
        return self._line()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


class Worker:
    """A ``tests.redis._worker`` process, talked to over its stdin/stdout lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, config: dict[str, Any]) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.redis._worker",
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=python_env(),
        )
        return cls(process)

    async def line(self, timeout: float = 60) -> dict[str, Any]:
        """The next JSON line the worker prints (bounded)."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while raw := await self.process.stdout.readline():
                if raw.startswith(b"{"):
                    result: dict[str, Any] = json.loads(raw)
                    return result
        raise AssertionError(f"worker exited: {await self.stderr()}")

    def send(self, text: str = "go") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                return (await self.process.stderr.read()).decode()
        return ""

    async def finish(self, timeout: float = 90) -> tuple[dict[str, Any], str]:
        """Close stdin; the worker's last JSON line and its stderr, once it exited."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            result = await self.line(timeout)
            async with asyncio.timeout(timeout):
                err = await self.stderr()
                await self.process.wait()
        finally:
            self.kill()
        assert self.process.returncode == 0, f"worker failed: {err[-3000:]}"
        return result, err

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


async def run_workers(configs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Start one worker per config, let them run, return each result and stderr."""
    workers = [await Worker.start(config) for config in configs]
    try:
        return list(await asyncio.gather(*(w.finish() for w in workers)))
    finally:
        for worker in workers:
            worker.kill()
            await worker.process.wait()


async def until(condition: Callable[[], Any], seconds: float = 20, step: float = 0.05) -> None:
    """Poll ``condition`` (a function, sync or async) until it is true; bounded."""
    for _ in range(max(1, int(seconds / step))):
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {seconds} s: {condition}")
