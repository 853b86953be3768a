"""Peak memory of one model walk, measured in a fresh process.

    python -m benchmarks.memory --server URL --client NAME --models N

Prints one JSON line: ``peak_mib`` (the peak resident set size over a short warm-up walk
and the measured walk, minus the resident size of the opened client before both),
``first_item_requests`` (API requests the server had seen when the first item arrived) and
``count``. A fresh process per measurement keeps one client's memory from colouring
another's, and the walk is not slowed down by tracing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from pathlib import Path

from .contenders import contenders
from .run import PAGE_SIZE, Control

_STATUS = Path("/proc/self/status")


def _rss_kib(field: str) -> int | None:
    """``VmRSS`` or ``VmHWM`` (peak) from /proc, in KiB, or ``None`` off Linux."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux: ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def measure(
    server_url: str, client_name: str, models: int, shape: str = "lean"
) -> dict[str, float]:
    clients, _ = contenders(server_url)
    client = next(c for c in clients if c.name == client_name)
    at_first: list[int] = []
    async with Control(server_url) as ctl:

        async def nothing() -> None:
            return None

        async def on_first() -> None:
            at_first.append(int((await ctl.stats(peek=True))["requests"]))

        await client.open()
        try:
            before = _rss_kib("VmRSS") or 0
            exact = _reset_peak()
            await ctl.configure(models=3 * PAGE_SIZE, shape=shape)
            await client.walk_models(5, nothing)  # warm up: lazy imports, codegen, connection
            await ctl.configure(models=models)
            await ctl.stats()
            count = await client.walk_models(models // PAGE_SIZE + 2, on_first)
            peak = _rss_kib("VmHWM") if exact else None
            if peak is None:  # ru_maxrss is the whole life's peak: an upper bound
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        finally:
            await client.close()
    return {
        "peak_mib": max(peak - before, 0) / 1024,
        "first_item_requests": at_first[0] if at_first else -1,
        "count": count,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--models", type=int, required=True)
    parser.add_argument("--shape", choices=("lean", "live"), default="lean")
    parser.add_argument("--stdlib-json", action="store_true")
    args = parser.parse_args(argv)
    if args.stdlib_json:
        sys.modules["orjson"] = None  # type: ignore[assignment]  # blocks the import
    result = asyncio.run(measure(args.server, args.client, args.models, args.shape))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
