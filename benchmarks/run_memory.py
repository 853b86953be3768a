"""Peak memory of many concurrent ``run()`` calls on one client (issue #27).

    python -m benchmarks.run_memory [--runs 10000] [--polls 3] [--interval 2.0] [--before DIR]

Starts the benchmark server, then for each client, in a fresh process: open the client,
warm it up, note the resident set, start ``runs`` runs at once (``client.run`` for this
SDK: a create, then polls every ``interval`` seconds until the prediction succeeds after
``polls`` polls; raw aiohttp: the same requests with one session and a sleep/GET loop),
and report the peak resident set above the one noted, per run in flight. Every run is in
flight at the peak: each lasts ``polls x interval`` seconds after its create and the last
create is sent before the first run ends (checked: ``peak_in_flight``). Linux only (the
kernel's ``VmHWM``, reset through ``/proc/self/clear_refs``).

The server sends no rate-limit headers here: against the live API's (a constant 599 on
creates) the throttle would rightly pace a burst of 10,000 creates at 600 a minute, which
measures the rate limit (see ``benchmarks/ratelimit.py``), not memory; queued runs are in
flight all the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from .contenders import BEFORE_ENV, BEFORE_PACKAGE, INPUT, MAX_POLLS, TOKEN, VERSION
from .memory import _reset_peak, _rss_kib
from .run import Control, bench_server

HERE = Path(__file__).resolve().parent
CLIENTS = ("replicate_async", "raw aiohttp")


class _Counter:
    """Runs in flight now, and the most at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        self.now -= 1


async def _sdk_runs(package: str, url: str, runs: int, interval: float, counter: _Counter) -> int:
    import importlib

    pkg: Any = importlib.import_module(package)
    poll = pkg.PollPolicy(initial=interval, factor=1.0, maximum=interval, jitter=0.1)
    async with pkg.AsyncReplicate(
        api_token=TOKEN, base_url=url + "/v1", max_connections=100, poll=poll
    ) as client:
        await client.run(VERSION, input=INPUT, wait=False)  # warm up
        before = _rss_kib("VmRSS") or 0
        _reset_peak()

        async def one() -> Any:
            counter.enter()
            try:
                return await client.run(VERSION, input=INPUT, wait=False)
            finally:
                counter.leave()

        outputs = await asyncio.gather(*(one() for _ in range(runs)))
        assert all(outputs), "every run returns the succeeded prediction's output"
        return before


async def _raw_runs(url: str, runs: int, interval: float, counter: _Counter) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = url + "/v1"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def one() -> str:
            counter.enter()
            try:
                body = {"version": VERSION, "input": INPUT}
                async with session.post(base + "/predictions", json=body, headers=headers) as r:
                    data = await r.json()
                for _ in range(MAX_POLLS):
                    if data["status"] == "succeeded":
                        return "succeeded"
                    await asyncio.sleep(interval)
                    async with session.get(
                        f"{base}/predictions/{data['id']}", headers=headers
                    ) as r:
                        data = await r.json()
                raise RuntimeError("prediction did not finish within MAX_POLLS polls")
            finally:
                counter.leave()

        await one()  # warm up
        counter.peak = 0
        before = _rss_kib("VmRSS") or 0
        _reset_peak()
        statuses = await asyncio.gather(*(one() for _ in range(runs)))
        assert set(statuses) == {"succeeded"}
        return before


async def measure(client: str, url: str, runs: int, interval: float) -> dict[str, float]:
    """One client's peak RSS above its warmed-up size, in this (fresh) process."""
    counter = _Counter()
    started = time.perf_counter()
    if client == "raw aiohttp":
        before = await _raw_runs(url, runs, interval, counter)
    else:
        package = BEFORE_PACKAGE if client.endswith("(before)") else "replicate_async"
        before = await _sdk_runs(package, url, runs, interval, counter)
    peak = _rss_kib("VmHWM") or 0
    above = max(peak - before, 0)
    return {
        "runs": runs,
        "peak_in_flight": counter.peak,
        "peak_mib": above / 1024,
        "kib_per_run": above / max(counter.peak, 1),
        "seconds": time.perf_counter() - started,
    }


def _one(client: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.run_memory",
        f"--measure={client}",
        f"--server={url}",
        f"--runs={args.runs}",
        f"--interval={args.interval}",
    ]
    out = subprocess.run(
        command, cwd=HERE.parent, capture_output=True, text=True, timeout=600, check=True
    )
    data: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--before", type=Path, help="a directory holding replicate_async_before")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process's client
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        if BEFORE_ENV in os.environ:
            sys.path.append(os.environ[BEFORE_ENV])
        result = asyncio.run(measure(args.measure, args.server, args.runs, args.interval))
        print(json.dumps(result))
        return
    clients = list(CLIENTS)
    if args.before is not None:
        os.environ[BEFORE_ENV] = str(args.before.resolve())
        clients.insert(1, "replicate_async (before)")
    print(
        f"| {args.runs:,} concurrent runs, {args.polls} polls each | peak MiB | KiB per run "
        "in flight | runs in flight at once | seconds |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    with bench_server(models=100, events=10) as url:
        asyncio.run(_configure(url, args.polls))
        for client in clients:
            data = _one(client, url, args)
            print(
                f"| {client} | {data['peak_mib']:.1f} | {data['kib_per_run']:.1f} "
                f"| {int(data['peak_in_flight']):,} | {data['seconds']:.0f} |",
                flush=True,
            )


async def _configure(url: str, polls: int) -> None:
    async with Control(url) as ctl:
        await ctl.configure(polls=polls, headers="none")


if __name__ == "__main__":
    main()
