"""Run the benchmark: every scenario, every client, side by side in one run.

    python -m benchmarks.run [--quick] [--out benchmarks/RESULTS.md] [--only a,b]

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
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp

from .contenders import Contender, RawAiohttp, ThisSDK, contenders

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "tests" / "examples"
SDK, RAW = ThisSDK.name, RawAiohttp.name
CONCURRENCY = 100
POLL_INTERVAL = 0.1
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
    waits: int
    events: int
    structures: int
    repeats: int
    walk_repeats: int
    deadline: float  # seconds for the whole run


FULL = Sizes(2_000, 1_000, (50_000, 10_000), 500, 50_000, 10_000, 5, 3, 600.0)
QUICK = Sizes(400, 200, (5_000, 1_000), 100, 10_000, 2_000, 2, 2, 120.0)


@dataclass
class Sample:
    """One repeat of one scenario by one client."""

    cpu: float
    wall: float
    ops: int
    requests: int = 0
    server_cpu: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Cell:
    """The median of a client's repeats of a scenario."""

    client: str
    samples: list[Sample]
    note: str = ""
    peak_mib: float | None = None
    first_item_requests: int | None = None

    def median(self, what: str) -> float:
        values = [_value(s, what) for s in self.samples]
        return statistics.median(values) if values else float("nan")

    def maximum(self, what: str) -> float:
        return max(_value(s, what) for s in self.samples)


def _value(sample: Sample, what: str) -> float:
    if what in ("cpu", "wall", "ops", "requests", "server_cpu"):
        return float(getattr(sample, what))
    return sample.extra.get(what, float("nan"))


@dataclass
class Result:
    """A scenario's cells, one per client, in the order the clients were listed."""

    key: str
    title: str
    unit: str  # what one "op" is, for the per-op column
    cells: dict[str, Cell] = field(default_factory=dict)
    checks: list[tuple[str, bool]] = field(default_factory=list)


# -- the server process ---------------------------------------------------------------


@contextlib.contextmanager
def bench_server(models: int, events: int, startup_timeout: float = 20.0) -> Iterator[str]:
    """Start ``benchmarks/server.py`` in its own process; always stop it."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "server.py"),
            f"--models={models}",
            f"--events={events}",
            f"--polls={POLLS_NEEDED}",
            "--max-seconds=1200",
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

    async def configure(self, **sizes: int) -> None:
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
    warm_sizes: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    memory: bool = False  # also run the (untimed) memory pass


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
                "page",
                walk(models),
                sizes.walk_repeats,
                warmup=walk(300),
                warm_sizes={"models": 300},
                sizes={"models": models},
                memory=True,
            )
            for models in sizes.models
        ),
        Plan(
            "d",
            f"(d) {sizes.waits:,} predictions needing {POLLS_NEEDED} polls each, "
            f"concurrency {CONCURRENCY}, interval {POLL_INTERVAL} s",
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
async def opened(server_url: str) -> Any:
    """Fresh clients for one scenario (no pool is shared across scenarios)."""
    clients, _ = contenders(server_url)
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
    async with opened(server_url) as clients:
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
                cell = result.cells[client.name]
                await memory_pass(cell, client, plan.sizes["models"], stdlib_json)
        for client in clients:
            result.cells[client.name].note = client.notes.get(plan.key[0], "")
    return result


async def memory_pass(cell: Cell, client: Contender, models: int, stdlib_json: bool) -> None:
    """Peak RSS of one more walk, and the requests sent before its first item.

    Run in a fresh process (:mod:`benchmarks.memory`), so that one client's memory does not
    colour another's, and untraced, so that it costs no more than a timed walk.
    """
    command = [
        sys.executable,
        "-m",
        "benchmarks.memory",
        f"--server={client.server_url}",
        f"--client={client.name}",
        f"--models={models}",
    ]
    if stdlib_json:
        command.append("--stdlib-json")
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=HERE.parent, stdout=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(REPEAT_TIMEOUT):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"the memory pass for {client.name} failed ({proc.returncode})")
    data = json.loads(out.decode().strip().splitlines()[-1])
    _expect("models walked", data["count"], models)
    cell.peak_mib = data["peak_mib"]
    cell.first_item_requests = int(data["first_item_requests"])


async def run_all(
    sizes: Sizes, only: set[str], server_url: str, *, stdlib_json: bool
) -> list[Result]:
    results = []
    async with Control(server_url) as ctl, asyncio.timeout(sizes.deadline):
        for plan in plans(sizes, server_url, only):
            print(f"running {plan.title} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            results.append(await run_plan(plan, server_url, ctl, stdlib_json))
            print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return results


# -- targets and the report ---------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _official(result: Result) -> Cell | None:
    return next((c for c in result.cells.values() if c.client.startswith("replicate ")), None)


def _per_request(cell: Cell) -> float:
    return _ratio(cell.median("cpu"), cell.median("requests"))


def check_targets(results: list[Result], sizes: Sizes) -> None:
    """Fill each result's ``checks`` with the issue's targets, met or not."""
    by_key = {r.key: r for r in results}
    for result in results:
        sdk = result.cells.get(SDK)
        raw = result.cells.get(RAW)
        if sdk is None or raw is None:
            continue
        key = result.key
        checks = result.checks
        if key in ("a", "b"):
            ratio = _ratio(_per_request(sdk), _per_request(raw))
            checks.append((f"CPU/request ≤ 1.3 x raw (is {ratio:.2f})", ratio <= 1.3))
        elif key.startswith("c"):
            ratio = _ratio(sdk.median("wall"), raw.median("wall"))
            checks.append((f"time ≤ 1.3 x raw (is {ratio:.2f})", ratio <= 1.3))
            checks.append(
                (
                    f"first item after 1 page (after {sdk.first_item_requests})",
                    sdk.first_item_requests == 1,
                )
            )
            small = by_key.get(f"c{sizes.models[1]}")
            if key == f"c{sizes.models[0]}" and small is not None:
                big_peak = sdk.peak_mib or 0.0
                small_peak = small.cells[SDK].peak_mib or 0.0
                flat = big_peak <= small_peak * 1.25 + 1.0
                checks.append((f"memory flat in N ({small_peak:.1f} → {big_peak:.1f} MiB)", flat))
        elif key == "d":
            needed = sizes.waits * (1 + POLLS_NEEDED)
            sent = int(sdk.maximum("requests"))
            over = int(sdk.maximum("over_polls"))
            checks.append(
                (
                    f"no extra requests ({sent:,} sent, {needed:,} needed, {over} over-polls)",
                    sent <= needed and over == 0,
                )
            )
            lag = sdk.median("lag_p99_s")
            floor = raw.median("lag_p99_s")
            checks.append(
                (
                    f"noticed within one interval (p99 lag {lag * 1000:.0f} ms; "
                    f"raw aiohttp's {floor * 1000:.0f} ms)",
                    lag <= POLL_INTERVAL,
                )
            )
        elif key == "e":
            ratio = _ratio(sdk.median("cpu"), raw.median("cpu"))
            checks.append((f"CPU ≤ 1.5 x raw (is {ratio:.2f})", ratio <= 1.5))
        official = _official(result)
        if official is not None and not math.isnan(official.median("cpu")):
            faster = sdk.median("cpu") < official.median("cpu") and (
                sdk.median("wall") < official.median("wall")
            )
            checks.append(("faster than the official client (CPU and wall)", faster))


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def _details(result: Result, cell: Cell) -> str:
    key = result.key
    parts = []
    if key.startswith("c"):
        parts.append(f"first item {cell.median('first_item_s') * 1000:.0f} ms")
        if cell.first_item_requests is not None:
            parts.append(f"after {cell.first_item_requests} req")
        if cell.peak_mib is not None:
            parts.append(f"peak {cell.peak_mib:.1f} MiB")
    elif key == "d":
        gets = cell.median("requests") - cell.median("ops")
        parts.append(f"{_ratio(gets, cell.median('ops')):.2f} polls/pred")
        parts.append(f"latency p50 {cell.median('latency_p50_s') * 1000:.0f} ms")
        lag50, lag99 = cell.median("lag_p50_s") * 1000, cell.median("lag_p99_s") * 1000
        parts.append(f"lag p50 {lag50:.0f} / p99 {lag99:.0f} ms")
        parts.append(f"over-polls {int(cell.maximum('over_polls'))}")
    if cell.note:
        parts.append(cell.note)
    return "; ".join(parts)


def tables(results: list[Result]) -> str:
    """The results and the ratios, as Markdown."""
    lines = [
        "| scenario | client | CPU s | wall s | CPU µs/op | requests | server CPU s | details |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        for cell in result.cells.values():
            if not cell.samples:
                continue
            ops = cell.median("ops")
            per_op = _ratio(cell.median("cpu"), ops) * 1e6 if ops else None
            lines.append(
                f"| {result.title} | {cell.client} | {_fmt(cell.median('cpu'))} "
                f"| {_fmt(cell.median('wall'))} | {_fmt(per_op, 1)} / {result.unit} "
                f"| {int(cell.median('requests')):,} | {_fmt(cell.median('server_cpu'), 2)} "
                f"| {_details(result, cell)} |"
            )
    lines += [
        "",
        "| scenario | SDK ÷ raw CPU | SDK ÷ raw wall | SDK ÷ official CPU "
        "| SDK ÷ official wall | targets |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        sdk, raw = result.cells.get(SDK), result.cells.get(RAW)
        if sdk is None or raw is None:
            continue
        official = _official(result)
        off_cpu = off_wall = None
        if official is not None:
            off_cpu = _ratio(sdk.median("cpu"), official.median("cpu"))
            off_wall = _ratio(sdk.median("wall"), official.median("wall"))
        targets = "<br>".join(f"{'✅' if ok else '❌'} {text}" for text, ok in result.checks)
        lines.append(
            f"| {result.title} | {_fmt(_ratio(sdk.median('cpu'), raw.median('cpu')), 2)} "
            f"| {_fmt(_ratio(sdk.median('wall'), raw.median('wall')), 2)} "
            f"| {_fmt(off_cpu, 2)} | {_fmt(off_wall, 2)} | {targets or '-'} |"
        )
    return "\n".join(lines)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """CPU model, cores, Python and library versions."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    codec = _json_codec()
    return (
        f"{model}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        f"aiohttp {_version('aiohttp')}, attrs {_version('attrs')}, "
        f"cattrs {_version('cattrs')}, orjson {_version('orjson')} "
        f"(replicate_async decodes with {codec}); "
        f"replicate {_version('replicate')}, httpx {_version('httpx')}, "
        f"pydantic {_version('pydantic')}"
    )


def _json_codec() -> str:
    """Which JSON codec replicate_async decodes with (it imports orjson if it can)."""
    import replicate_async._converter  # noqa: F401

    return "orjson" if sys.modules.get("orjson") is not None else "stdlib json"


def report(
    results: list[Result],
    sizes: Sizes,
    quick: bool,
    note: str,
    took: float,
    load_before: tuple[float, float, float],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick" if quick else "full"
    header = [
        "# Benchmark results",
        "",
        f"- Date: {when}; mode: {mode} (median of {sizes.repeats} repeats, "
        f"{sizes.walk_repeats} for (c)); run took {took:.0f} s.",
        f"- Machine: {machine()}.",
        "- Client-process CPU (`time.process_time()`); the server is another process. "
        "Requests are counted by the server.",
    ]
    load = ", ".join(f"{x:.2f}" for x in load_before)
    header.append(f"- Load average (1, 5, 15 min) before the run: {load}.")
    if note:
        header.append(f"- {note}.")
    return "\n".join([*header, "", tables(results), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repeats (CI)")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    parser.add_argument("--only", default="abcdef", help="scenarios to run, e.g. 'ab' or 'a,b'")
    parser.add_argument(
        "--stdlib-json",
        action="store_true",
        help="make replicate_async decode with the stdlib json even if orjson is installed",
    )
    args = parser.parse_args(argv)
    if args.stdlib_json:
        sys.modules["orjson"] = None  # type: ignore[assignment]  # blocks the import
    sizes = QUICK if args.quick else FULL
    only = {c for c in args.only if c.isalpha()}
    started = time.perf_counter()
    load_before = os.getloadavg()
    with bench_server(models=sizes.models[0], events=sizes.events) as server_url:
        _, note = contenders(server_url)
        results = asyncio.run(run_all(sizes, only, server_url, stdlib_json=args.stdlib_json))
    check_targets(results, sizes)
    took = time.perf_counter() - started
    text = report(results, sizes, args.quick, note, took, load_before)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
