"""Profile this SDK (only) on one scenario against the lean server.

    python -m benchmarks.profile_sdk a|b|c|d|e|g [--tool cprofile|pyinstrument] [--top 30]
                                     [--via client.run|run_many|use()|client.stream|stream_output]

cProfile (the default) prints the functions with the most own time and the most
cumulative time; pyinstrument (if installed) prints its call tree. Sizes are those of the
full benchmark, run once after a warm-up. ``--via`` profiles one of the calls users make
(scenario d or e) instead of the lower-layer call.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
from collections.abc import Awaitable, Callable

from .contenders import ThisSDK, ThisSDKVia
from .run import (
    CONCURRENCY,
    FULL,
    PAGE_SIZE,
    Control,
    Scenario,
    bench_server,
    fan_out,
    sequential_gets,
    sse,
    wait_for_completion,
    walk,
)


def _scenarios(server_url: str) -> dict[str, tuple[Scenario, Scenario, dict[str, int | str]]]:
    """Key -> (measured scenario, warm-up, server sizes)."""
    stream_url = server_url + "/v1/predictions/benchstream/stream"
    return {
        "a": (fan_out(FULL.creates), fan_out(2 * CONCURRENCY), {}),
        "b": (sequential_gets(FULL.gets), sequential_gets(50), {}),
        "c": (walk(10_000), walk(3 * PAGE_SIZE), {"models": 10_000, "shape": "lean"}),
        "g": (walk(10_000), walk(3 * PAGE_SIZE), {"models": 10_000, "shape": "live"}),
        "d": (wait_for_completion(FULL.waits), wait_for_completion(20), {}),
        "e": (sse(FULL.events, stream_url), sse(FULL.events, stream_url), {}),
    }


async def _profiled(
    server_url: str,
    key: str,
    run: Callable[[Callable[[], Awaitable[object]]], Awaitable[None]],
    via: str | None = None,
) -> None:
    scenario, warmup, sizes = _scenarios(server_url)[key]
    client = ThisSDK(server_url) if via is None else ThisSDKVia(server_url, via)
    async with Control(server_url) as ctl:
        await client.open()
        try:
            await ctl.configure(models=3 * PAGE_SIZE, shape=sizes.get("shape", "lean"))
            await warmup(client)
            await ctl.configure(**sizes)
            await run(lambda: scenario(client))
        finally:
            await client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices="abcdeg")
    parser.add_argument("--tool", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--via", choices=sorted(ThisSDKVia.CALLS), help="a call users make")
    args = parser.parse_args(argv)
    if args.via is not None and ThisSDKVia.CALLS[args.via] != args.scenario:
        parser.error(f"--via {args.via} runs in scenario {ThisSDKVia.CALLS[args.via]}")

    with bench_server(models=10_000, events=FULL.events) as server_url:
        if args.tool == "pyinstrument":
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="enabled")

            async def run_pyinstrument(job: Callable[[], Awaitable[object]]) -> None:
                with profiler:
                    await job()

            asyncio.run(_profiled(server_url, args.scenario, run_pyinstrument, args.via))
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            return

        profile = cProfile.Profile()

        async def run_cprofile(job: Callable[[], Awaitable[object]]) -> None:
            profile.enable()
            try:
                await job()
            finally:
                profile.disable()

        asyncio.run(_profiled(server_url, args.scenario, run_cprofile, args.via))
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
