"""This SDK's own CPU per call, without the network: the load-insensitive view of #27.

    python -m benchmarks.overhead [--calls 3000] [--repeats 7] [--before DIR]

Each call goes through the whole SDK (argument checks, options, throttle, retry wrapper,
slots, error mapping, decode, typed object) down to ``session.request``, which here is a
stub answering at once with the benchmark server's bodies and the live API's rate-limit
headers. What remains is the SDK's own work; the floor, raw aiohttp's own work for the
same call, is measured separately by ``benchmarks.run`` (about 125-170 µs a create on
the 2-core machine). Best of ``repeats`` runs of ``calls`` calls, so a noisy neighbour
costs little: compare before and after in one run (``--before``, as ``benchmarks.run``).

Calls: ``predictions.create`` (scenario a), ``predictions.get`` (b), the same create with a
per-call ``timeout=`` option, and ``client.run`` and a ``use()`` function of a prediction
the create returns finished (``Prefer: wait``), whose share of (d) is one create.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .contenders import BEFORE_ENV, BEFORE_PACKAGE, INPUT, TOKEN, VERSION

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "examples"
BASE = "http://127.0.0.1:9/v1"


def _body(name: str) -> bytes:
    data = json.loads((EXAMPLES / name).read_text())
    data["urls"] = {"get": f"{BASE}/predictions/{data['id']}", "cancel": f"{BASE}/x/cancel"}
    return json.dumps(data).encode()


class _Answer:
    """What the SDK reads of an aiohttp response."""

    def __init__(self, url: str, status: int, body: bytes, remaining: str) -> None:
        self.url = URL(url)
        self.status = status
        self._body = body
        self.content = self
        self.headers = CIMultiDictProxy(
            CIMultiDict(
                {
                    "Content-Type": "application/json",
                    "ratelimit-remaining": remaining,
                    "ratelimit-reset": "1",
                }
            )
        )

    def is_eof(self) -> bool:  # as ``content``: the whole body has arrived
        return True

    async def read(self) -> bytes:
        return self._body


class StubSession:
    """``session.request`` answering at once: a create is ``starting`` (``succeeded``
    when it asked to be held), a get ``succeeded``."""

    closed = False

    def __init__(self) -> None:
        self._created = _body("prediction-create-async-starting.json")
        self._done = _body("prediction-get-succeeded.json")
        self._version = (EXAMPLES / "version-get-sdxl.json").read_bytes()

    @contextlib.asynccontextmanager
    async def request(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[_Answer]:
        headers = kwargs.get("headers") or {}
        if method == "POST":
            body = self._done if "Prefer" in headers else self._created
            yield _Answer(url, 201, body, "599")
        elif "/versions/" in url:
            yield _Answer(url, 200, self._version, "2999")
        else:
            yield _Answer(url, 200, self._done, "59999")

    async def close(self) -> None:
        """Nothing to release."""


def _client(package: str) -> Any:
    pkg = importlib.import_module(package)
    client = pkg.AsyncReplicate(api_token=TOKEN, base_url=BASE)
    stub = StubSession()
    client._http._pool.session = lambda *args, **kwargs: stub
    return client


def _calls(client: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    predictions = client.predictions
    pid = "vgcm4plb7tgzlyznry5d5jkgvu"
    use = client.use(f"stability-ai/sdxl:{VERSION}")
    return {
        "predictions.create": lambda: predictions.create(version=VERSION, input=INPUT),
        "predictions.get": lambda: predictions.get(pid),
        "predictions.create(timeout=30)": lambda: predictions.create(
            version=VERSION, input=INPUT, timeout=30
        ),
        "client.run (held, one create)": lambda: client.run(VERSION, input=INPUT),
        "use() (held, one create)": lambda: use(**INPUT),
    }


async def _best(call: Callable[[], Awaitable[Any]], calls: int, repeats: int) -> float:
    for _ in range(50):  # warm-up: builders, caches, the throttle's first hint
        await call()
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(calls):
            await call()
        best = min(best, time.process_time() - started)
    return best / calls * 1e6


async def measure(packages: list[str], calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """µs per call, by call and package (interleaved, so load falls on both alike)."""
    clients = {package: _client(package) for package in packages}
    found: dict[str, dict[str, float]] = {}
    try:
        for name in _calls(next(iter(clients.values()))):
            for package, client in clients.items():
                call = _calls(client)[name]
                found.setdefault(name, {})[package] = await _best(call, calls, repeats)
    finally:
        for client in clients.values():
            await client.aclose()
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--before", type=Path, help="a directory holding replicate_async_before")
    args = parser.parse_args(argv)
    packages = ["replicate_async"]
    if args.before is not None:
        os.environ[BEFORE_ENV] = str(args.before.resolve())
        sys.path.append(str(args.before.resolve()))
        packages.append(BEFORE_PACKAGE)
    found = asyncio.run(measure(packages, args.calls, args.repeats))
    print("| SDK's own CPU per call (no network), µs | " + " | ".join(packages) + " |")
    print("| --- |" + " ---: |" * len(packages))
    for name, by_package in found.items():
        cells = " | ".join(f"{by_package[p]:.1f}" for p in packages)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
