"""Run the benchmark: every scenario, every client, side by side in one run.

    python -m benchmarks.run [--quick] [--out benchmarks/RESULTS.md] [--only a,b]
                             [--before DIR] [--no-memory-curve]

The lean server (:mod:`benchmarks.server`) runs in its own process, so the CPU seconds
reported here (``time.process_time()`` deltas) are the client's alone. Repeats of a
scenario are interleaved across clients (in a rotating order) and the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .contenders import BEFORE_ENV, POLL_INTERVAL, Contender, RawAiohttp, ThisSDK, contenders
from .report import (
    Cell,
    MemoryCurve,
    Result,
    Sample,
    check_targets,
    report,
    write_section,
)

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "tests" / "examples"
SDK, RAW = ThisSDK.name, RawAiohttp.name
CONCURRENCY = 100
POLLS_NEEDED = 3
PAGE_SIZE = 100
#: No single repeat of a scenario may take longer than this (seconds).
REPEAT_TIMEOUT = 180.0


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is, and how often it is repeated."""

    creates: int
    gets: int
    models: tuple[int, int]  # (big, small): memory must not grow from small to big
    live_models: tuple[int, int]  # the same for live-shaped models
    memory_models: tuple[int, ...]  # more live-shaped walks measured for peak RSS vs N
    memory_all: bool  # the memory pass of walks for every client (else for this SDK only)
    waits: int
    events: int
    structures: int
    repeats: int
    walk_repeats: int
    deadline: float  # seconds for the whole run


FULL = Sizes(
    creates=2_000,
    gets=1_000,
    models=(10_000, 2_000),
    live_models=(50_000, 10_000),
    memory_models=(200_000,),
    memory_all=True,
    waits=500,
    events=50_000,
    structures=10_000,
    repeats=5,
    walk_repeats=3,
    deadline=3000.0,
)
QUICK = Sizes(
    creates=400,
    gets=200,
    models=(2_000, 500),
    live_models=(1_000, 300),
    memory_models=(),
    memory_all=False,
    waits=100,
    events=10_000,
    structures=2_000,
    repeats=2,
    walk_repeats=2,
    deadline=120.0,
)


# -- the server process ---------------------------------------------------------------


@contextlib.contextmanager
def bench_server(
    models: int,
    events: int,
    startup_timeout: float = 20.0,
    *,
    live_headers: bool = True,
    lifetime: float = 1200.0,
) -> Iterator[str]:
    """Start ``benchmarks/server.py`` in its own process; always stop it."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "server.py"),
            f"--models={models}",
            f"--events={events}",
            f"--polls={POLLS_NEEDED}",
            f"--max-seconds={lifetime:.0f}",  # a safety net: outlives the run's deadline
            *([] if live_headers else ["--no-live-headers"]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], startup_timeout)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            raise RuntimeError(f"the benchmark server did not start (got {line!r})")
        yield f"http://127.0.0.1:{line}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Control:
    """The harness's own line to the server (stats, sizes); never measured."""

    def __init__(self, server_url: str) -> None:
        self.url = server_url
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Control:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def stats(self, *, peek: bool = False) -> dict[str, float]:
        assert self._session is not None
        params = {"peek": "1"} if peek else {}
        async with self._session.get(self.url + "/__stats", params=params) as resp:
            data: dict[str, float] = await resp.json()
            return data

    async def configure(self, **sizes: int | str) -> None:
        assert self._session is not None
        params = {k: str(v) for k, v in sizes.items()}
        async with self._session.post(self.url + "/__config", params=params) as resp:
            resp.raise_for_status()


# -- measuring --------------------------------------------------------------------------


class Stopwatch:
    """Client-process CPU seconds and wall seconds over a ``with`` block."""

    cpu = 0.0
    wall = 0.0

    def __enter__(self) -> Stopwatch:
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


async def _workers(count: int, concurrency: int, job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` ``count`` times with at most ``concurrency`` running at once."""
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:  # shared: each worker takes the next index
            await job()

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(worker())


def _expect(what: str, got: object, want: object) -> None:
    if got != want:
        raise RuntimeError(f"{what}: expected {want!r}, got {got!r}")


# -- the scenarios ------------------------------------------------------------------------

Scenario = Callable[[Contender], Awaitable[Sample]]


def fan_out(count: int) -> Scenario:
    """(a) ``count`` prediction creates, at most 100 in flight."""

    async def run(client: Contender) -> Sample:
        async def job() -> None:
            _expect("create status", await client.create(), "starting")

        with Stopwatch() as sw:
            await _workers(count, CONCURRENCY, job)
        return Sample(sw.cpu, sw.wall, count)

    return run


def sequential_gets(count: int) -> Scenario:
    """(b) ``count`` sequential ``GET /predictions/{id}``: per-call overhead."""

    async def run(client: Contender) -> Sample:
        get = client.get
        with Stopwatch() as sw:
            for _ in range(count):
                status = await get("vgcm4plb7tgzlyznry5d5jkgvu")
        _expect("get status", status, "succeeded")
        return Sample(sw.cpu, sw.wall, count)

    return run


def walk(models: int) -> Scenario:
    """(c) every model of ``GET /models``, 100 per page."""
    max_pages = models // PAGE_SIZE + 2

    async def run(client: Contender) -> Sample:
        first: list[float] = []

        async def on_first() -> None:
            first.append(time.perf_counter())

        start = time.perf_counter()
        with Stopwatch() as sw:
            count = await client.walk_models(max_pages, on_first)
        _expect("models walked", count, models)
        sample = Sample(sw.cpu, sw.wall, count)
        sample.extra["first_item_s"] = first[0] - start
        return sample

    return run


def wait_for_completion(count: int) -> Scenario:
    """(d) ``count`` predictions, each needing 3 polls, waited on 100 at a time."""

    async def run(client: Contender) -> Sample:
        latencies: list[float] = []

        async def job() -> None:
            start = time.perf_counter()
            _expect("final status", await client.run_and_wait(POLL_INTERVAL), "succeeded")
            latencies.append(time.perf_counter() - start)

        if client.run_batch is not None:  # one call runs them all (run_many)
            with Stopwatch() as sw:
                statuses = await client.run_batch(count, CONCURRENCY)
            _expect("final statuses", set(statuses), {"succeeded"})
            _expect("results", len(statuses), count)
            # Each result's start is the SDK's own business: no per-prediction latency.
            return Sample(sw.cpu, sw.wall, count)
        with Stopwatch() as sw:
            await _workers(count, CONCURRENCY, job)
        # Each prediction needs 3 polls, so 3 intervals is the ideal; the rest is lag.
        ideal = POLLS_NEEDED * POLL_INTERVAL
        latencies.sort()
        sample = Sample(sw.cpu, sw.wall, count)
        sample.extra["latency_p50_s"] = latencies[len(latencies) // 2]
        sample.extra["lag_p50_s"] = latencies[len(latencies) // 2] - ideal
        sample.extra["lag_p99_s"] = latencies[int(0.99 * (len(latencies) - 1))] - ideal
        return sample

    return run


def sse(events: int, url: str) -> Scenario:
    """(e) one SSE stream of ``events`` output events, then ``done``."""

    async def run(client: Contender) -> Sample:
        with Stopwatch() as sw:
            count = await client.stream(url)
        if count < 0:  # the client has no SSE support
            return Sample(float("nan"), float("nan"), 0)
        _expect("events read", count, events)
        return Sample(sw.cpu, sw.wall, count)

    return run


def structuring(count: int) -> Scenario:
    """(f) ``count`` decoded prediction objects into the client's model objects."""
    body = (EXAMPLES / "prediction-get-succeeded.json").read_bytes()

    async def run(client: Contender) -> Sample:
        items = [json.loads(body) for _ in range(count)]  # fresh dicts, outside the clock
        with Stopwatch() as sw:
            made = client.structure(items)
        _expect("objects built", made, count)
        return Sample(sw.cpu, sw.wall, count)

    return run


# -- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One scenario: what to run, how to warm up, and the server sizes for each."""

    key: str
    title: str
    unit: str  # what one op is, for the per-op column
    scenario: Scenario
    repeats: int
    warmup: Scenario | None = None
    warm_sizes: dict[str, int | str] = field(default_factory=dict)
    sizes: dict[str, int | str] = field(default_factory=dict)
    memory: bool = False  # also run the (untimed) memory pass
    memory_all: bool = True  # for every client (else for this SDK only)


def plans(sizes: Sizes, server_url: str, only: set[str]) -> list[Plan]:
    stream_url = server_url + "/v1/predictions/benchstream/stream"
    found = [
        Plan(
            "a",
            f"(a) fan-out: {sizes.creates:,} creates, concurrency {CONCURRENCY}",
            "request",
            fan_out(sizes.creates),
            sizes.repeats,
            warmup=fan_out(2 * CONCURRENCY),
        ),
        Plan(
            "b",
            f"(b) {sizes.gets:,} sequential GET /predictions/{{id}}",
            "request",
            sequential_gets(sizes.gets),
            sizes.repeats,
            warmup=sequential_gets(50),
        ),
        *(
            Plan(
                f"c{models}",
                f"(c) walk {models:,} models, 100 per page",
                "model",
                walk(models),
                sizes.walk_repeats,
                warmup=walk(300),
                warm_sizes={"models": 300, "shape": "lean"},
                sizes={"models": models, "shape": "lean"},
                memory=True,
                memory_all=sizes.memory_all,
            )
            for models in sizes.models
        ),
        *(
            Plan(
                f"g{models}",
                f"(g) walk {models:,} live-shaped models, 100 per page",
                "model",
                walk(models),
                sizes.repeats,  # the headline: as many repeats as the short scenarios
                warmup=walk(300),
                warm_sizes={"models": 300, "shape": "live"},
                sizes={"models": models, "shape": "live"},
                memory=True,
                memory_all=sizes.memory_all,
            )
            for models in sizes.live_models
        ),
        Plan(
            "d",
            f"(d) {sizes.waits:,} predictions needing {POLLS_NEEDED} polls each, "
            f"concurrency {CONCURRENCY}, equal intervals of {POLL_INTERVAL} s",
            "prediction",
            wait_for_completion(sizes.waits),
            sizes.repeats,
            warmup=wait_for_completion(20),
        ),
        Plan(
            "e",
            f"(e) one SSE stream of {sizes.events:,} events",
            "event",
            sse(sizes.events, stream_url),
            sizes.repeats,
            warmup=sse(200, stream_url),
            warm_sizes={"events": 200},
            sizes={"events": sizes.events},
        ),
        Plan(
            "f",
            f"(f) structure {sizes.structures:,} predictions (no HTTP)",
            "object",
            structuring(sizes.structures),
            sizes.repeats,
            warmup=structuring(200),
        ),
    ]
    return [plan for plan in found if plan.key[0] in only]


@contextlib.asynccontextmanager
async def opened(server_url: str, key: str) -> Any:
    """Fresh clients for one scenario (no pool is shared across scenarios)."""
    clients, _ = contenders(server_url)
    clients = [c for c in clients if c.scenarios is None or key[0] in c.scenarios]
    try:
        for client in clients:
            await client.open()
        yield clients
    finally:
        for client in clients:
            await client.close()


async def run_plan(plan: Plan, server_url: str, ctl: Control, stdlib_json: bool) -> Result:
    """Warm every client up, then interleave the repeats (rotating the order each round)."""
    result = Result(plan.key, plan.title, plan.unit)
    async with opened(server_url, plan.key) as clients:
        await ctl.configure(**plan.warm_sizes)
        for client in clients:
            result.cells[client.name] = Cell(client.name, [])
            if plan.warmup is not None:
                async with asyncio.timeout(REPEAT_TIMEOUT):
                    await plan.warmup(client)
        await ctl.configure(**plan.sizes)
        for round_ in range(plan.repeats):
            shift = round_ % len(clients)
            for client in [*clients[shift:], *clients[:shift]]:
                gc.collect()
                await ctl.stats()  # resets the server's counters
                async with asyncio.timeout(REPEAT_TIMEOUT):
                    sample = await plan.scenario(client)
                stats = await ctl.stats()
                sample.requests = int(stats["requests"])
                sample.server_cpu = stats["cpu"]
                sample.extra["over_polls"] = stats["over_polls"]
                result.cells[client.name].samples.append(sample)
        if plan.memory:
            for client in clients:
                if client.name != SDK and not plan.memory_all:
                    continue
                cell = result.cells[client.name]
                cell.peak_mib, cell.first_item_requests = await memory_pass(
                    client.server_url, client.name, plan.sizes, stdlib_json
                )
        for client in clients:
            result.cells[client.name].note = client.notes.get(plan.key[0], "")
    return result


async def memory_pass(
    server_url: str,
    client: str,
    sizes: dict[str, int | str],
    stdlib_json: bool,
    limit: float = REPEAT_TIMEOUT,
) -> tuple[float, int]:
    """Peak RSS (MiB) of one more walk, and the requests sent before its first item.

    Run in a fresh process (:mod:`benchmarks.memory`), so that one client's memory does not
    colour another's, and untraced, so that it costs no more than a timed walk.
    """
    models = int(sizes["models"])
    command = [
        sys.executable,
        "-m",
        "benchmarks.memory",
        f"--server={server_url}",
        f"--client={client}",
        f"--models={models}",
        f"--shape={sizes.get('shape', 'lean')}",
    ]
    if stdlib_json:
        command.append("--stdlib-json")
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=HERE.parent, stdout=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(limit):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"the memory pass for {client} failed ({proc.returncode})")
    data = json.loads(out.decode().strip().splitlines()[-1])
    _expect("models walked", data["count"], models)
    return float(data["peak_mib"]), int(data["first_item_requests"])


async def run_all(
    sizes: Sizes, only: set[str], server_url: str, *, stdlib_json: bool, curve: bool
) -> tuple[list[Result], MemoryCurve]:
    results = []
    memory: MemoryCurve = {}
    async with Control(server_url) as ctl, asyncio.timeout(sizes.deadline):
        for plan in plans(sizes, server_url, only):
            print(f"running {plan.title} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            results.append(await run_plan(plan, server_url, ctl, stdlib_json))
            print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        if curve and sizes.memory_models and "g" in only:
            memory = await memory_curve(server_url, [SDK, RAW], sizes.memory_models, stdlib_json)
        for result in results:  # the walks' own memory passes are points of the curve too
            if result.key[0] == "g":
                for cell in result.cells.values():
                    if cell.peak_mib is not None:
                        memory.setdefault(cell.client, {})[int(result.key[1:])] = cell.peak_mib
    return results, memory


async def memory_curve(
    server_url: str, clients: list[str], models: tuple[int, ...], stdlib_json: bool
) -> MemoryCurve:
    """Peak RSS of a live-shaped walk of each size in ``models``, per client."""
    curve: MemoryCurve = {}
    for count in models:
        print(f"memory: walking {count:,} live-shaped models ...", file=sys.stderr, flush=True)
        for client in clients:
            sizes: dict[str, int | str] = {"models": count, "shape": "live"}
            limit = max(REPEAT_TIMEOUT, count / 250)  # 200,000 models: 800 s at most
            peak, _ = await memory_pass(server_url, client, sizes, stdlib_json, limit)
            curve.setdefault(client, {})[count] = peak
    return curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repeats (CI)")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    parser.add_argument("--only", default="abcdefg", help="scenarios to run, e.g. 'ab' or 'a,b'")
    parser.add_argument(
        "--before",
        type=Path,
        help="a directory holding an older copy of the SDK renamed replicate_async_before: "
        "it runs too, as 'replicate_async (before)'",
    )
    parser.add_argument(
        "--no-memory-curve",
        action="store_true",
        help="skip the peak-RSS-vs-N walks of live-shaped models (full mode only)",
    )
    parser.add_argument(
        "--stdlib-json",
        action="store_true",
        help="make replicate_async decode with the stdlib json even if orjson is installed",
    )
    parser.add_argument(
        "--no-live-headers",
        action="store_true",
        help="the server sends no ratelimit-remaining/ratelimit-reset headers (as before #27)",
    )
    args = parser.parse_args(argv)
    if args.stdlib_json:
        sys.modules["orjson"] = None  # type: ignore[assignment]  # blocks the import
    if args.before is not None:
        os.environ[BEFORE_ENV] = str(args.before.resolve())  # memory passes inherit it
    sizes = QUICK if args.quick else FULL
    only = {c for c in args.only if c.isalpha()}
    started = time.perf_counter()
    load_before = os.getloadavg()
    live = not args.no_live_headers
    lifetime = sizes.deadline + 600  # the memory curve runs after the deadline's scenarios
    with bench_server(
        sizes.models[0], sizes.events, live_headers=live, lifetime=lifetime
    ) as server_url:
        _, note = contenders(server_url)
        results, curve = asyncio.run(
            run_all(
                sizes,
                only,
                server_url,
                stdlib_json=args.stdlib_json,
                curve=not args.no_memory_curve,
            )
        )
    check_targets(
        results,
        models=sizes.models,
        live_models=sizes.live_models,
        waits=sizes.waits,
        polls=POLLS_NEEDED,
        interval=POLL_INTERVAL,
    )
    took = time.perf_counter() - started
    mode = "quick" if args.quick else "full"
    mode += (
        f" (median of {sizes.repeats} interleaved repeats, "
        f"{sizes.walk_repeats} for the lean walks (c))"
    )
    notes = [
        note,
        "replicate_async decodes with stdlib json" if args.stdlib_json else "",
        "The server sends the live API's ratelimit-remaining/ratelimit-reset headers"
        if live
        else "The server sends no rate-limit headers (--no-live-headers)",
    ]
    text = report(results, curve, mode=mode, notes=notes, took=took, load_before=load_before)
    print(text)
    if args.out is not None:
        write_section(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
