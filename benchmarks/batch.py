"""Durable batches at scale: memory, ledger cost and throughput against ``run_many``.

    python -m benchmarks.batch                 # 10,000 and 100,000 items (a few minutes)
    python -m benchmarks.batch --quick         # 2,000 and 20,000 items

Every run is a fresh process against the lean benchmark server (``benchmarks/server.py``,
its own process; a prediction succeeds on its first poll, polled after 5 ms), on inputs
read from a JSONL file. It reports:

- the peak RSS of a batch of N items and of 10 N items (flat memory: the inputs stream
  from the file into the ledger, and only ``concurrency`` items are ever in memory);
- items per second and client CPU microseconds per item of a SQLite batch, a Redis batch
  (when ``redis-server`` is installed) and ``run_many`` on the same work and the same
  client settings (run_many and SQLite alternate three times: compare the best of each);
- the ledger's cost per item in microseconds, without HTTP: add, claim (the intent), record
  the id, record the end; for SQLite on one thread with group commit (the store shipped),
  for ``aiosqlite`` with one awaited statement each (when it is installed), and for Redis;
- a whole batch's own cost per item, without HTTP (``overhead``): a SQLite batch against
  a host whose creates and waits answer at once, CPU microseconds per item (what a batch
  adds to ``run_many``'s work; this one is not drowned in the noise of a shared machine).

``--reps N`` alternates run_many and SQLite N times on the first size (default 3) and
ends with a summary: the median and range of each, and the median of the SQLite/run_many
ratios of CPU per item and of items per second, pair by pair.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .memory import _rss_kib
from .run import bench_server

VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
CONCURRENCY = 64


def write_inputs(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps({"id": i, "prompt": f"item {i}"}) + "\n")


def _inputs(path: Path) -> Any:
    with path.open() as lines:
        for line in lines:
            yield json.loads(line)


async def one(mode: str, server: str, inputs: Path, store: str) -> dict[str, Any]:
    """One measured run in this (fresh) process."""
    from replicate_async import AsyncReplicate, PollPolicy, Throttle

    poll = PollPolicy(initial=0.005, maximum=0.005, jitter=0.0)
    limiter = Throttle(create_per_minute=1e9, other_per_minute=1e9)
    done = 0
    async with AsyncReplicate(
        "r8_bench", base_url=server + "/v1", poll=poll, limiter=limiter
    ) as client:
        start = time.perf_counter()
        if mode == "run_many":
            async for result in client.run_many(VERSION, _inputs(inputs), concurrency=CONCURRENCY):
                done += result.ok
        else:
            async with client.batch(
                VERSION, inputs, store=store, key="id", concurrency=CONCURRENCY
            ) as batch:
                async for item in batch:
                    done += item.ok
        wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "mode": mode,
        "items": done,
        "seconds": round(wall, 2),
        "per_second": round(done / wall, 1),
        "cpu_us_per_item": round((usage.ru_utime + usage.ru_stime) / max(done, 1) * 1e6),
        "peak_rss_mib": round((_rss_kib("VmHWM") or 0) / 1024, 1),
    }


async def ledger_cost(store: Any, count: int) -> float:
    """Microseconds per item of the ledger alone: add, claim, record id, record the end,
    ``CONCURRENCY`` items in flight as in a batch."""
    await store.open({"ref": VERSION, "key": "id"})
    rows = [(str(i), json.dumps({"id": i})) for i in range(count)]
    start = time.perf_counter()
    for first in range(0, count, 500):
        await store.add(rows[first : first + 500])

    async def life(key: str) -> None:
        await store.update(key, {"state": "running", "prediction_id": "p" + key}, owner="w")
        await store.update(key, {"state": "succeeded", "finished_at": time.time()}, owner="w")

    while True:
        claimed = await store.claim("w", time.time(), 60.0, CONCURRENCY)
        if not claimed:
            break
        await asyncio.gather(*(life(item.key) for item in claimed))
    elapsed = time.perf_counter() - start
    await store.aclose()
    return elapsed / count * 1e6


class _InstantPredictions:
    """Creates and fetches that answer at once (no HTTP): what is left is the batch (and
    the run machinery every batch item uses: one poll per item, on a 1 µs interval)."""

    def __init__(self) -> None:
        self.made = 0

    async def create(self, *, version: str, input: Any, **options: Any) -> Any:
        from replicate_async.models import Prediction

        await asyncio.sleep(0)
        self.made += 1
        return Prediction(id=f"p{self.made}", status="starting", version=version, input=input)

    async def get(self, prediction_id: str) -> Any:
        from replicate_async.models import Prediction

        await asyncio.sleep(0)
        return Prediction(id=prediction_id, status="succeeded", output="https://x/o.png")

    async def cancel(self, prediction_id: str) -> Any:
        raise AssertionError("nothing is canceled here")


def _instant_runner() -> Any:
    """A client's :class:`Runner` whose predictions answer at once."""
    from replicate_async import PollPolicy
    from replicate_async._config import ClientConfig
    from replicate_async._workflows.inflight import InFlight
    from replicate_async._workflows.runner import Runner

    config = ClientConfig(poll=PollPolicy(initial=1e-6, maximum=1e-6, jitter=0.0))
    return Runner(None, config, InFlight(config.clock), _InstantPredictions(), None, None, None)  # type: ignore[arg-type]


async def overhead(inputs: Path, store: str) -> dict[str, Any]:
    """CPU microseconds per item of a SQLite batch whose predictions cost nothing."""
    from replicate_async.batch import Batch

    batch = Batch(_instant_runner(), VERSION, inputs, store=store, concurrency=CONCURRENCY)
    before = resource.getrusage(resource.RUSAGE_SELF)
    done = 0
    async with batch:
        async for item in batch:
            done += item.ok
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"mode": "overhead", "items": done, "cpu_us_per_item": round(cpu / done * 1e6, 1)}


class AioSQLiteLedger:
    """The same operations on ``aiosqlite``: one awaited statement (and commit) each."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db: Any = None

    async def open(self, meta: Any) -> None:
        import aiosqlite

        from replicate_async.batch._sqlite import _SCHEMA

        self.db = await aiosqlite.connect(self.path, isolation_level=None)
        await self.db.execute("PRAGMA journal_mode = WAL")
        await self.db.execute("PRAGMA synchronous = NORMAL")
        await self.db.executescript(_SCHEMA)

    async def add(self, rows: Any) -> None:
        await self.db.executemany("INSERT OR IGNORE INTO items (key, input) VALUES (?, ?)", rows)

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Any]:
        cursor = await self.db.execute(
            "UPDATE items SET state = 'creating', owner = ?, lease_until = ?, intent_at = ? "
            "WHERE seq IN (SELECT seq FROM items WHERE state = 'pending' ORDER BY seq LIMIT ?) "
            "RETURNING key",
            (owner, now + lease, now, limit),
        )
        rows = await cursor.fetchall()

        class Item:
            def __init__(self, key: str) -> None:
                self.key = key

        return [Item(row[0]) for row in rows]

    async def update(self, key: str, fields: Any, *, owner: str) -> None:
        sets = ", ".join(f"{name} = ?" for name in fields)
        await self.db.execute(
            f"UPDATE items SET {sets} WHERE key = ? AND owner = ?", [*fields.values(), key, owner]
        )

    async def aclose(self) -> None:
        await self.db.close()


def _run_child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _redis_url() -> tuple[Any, str | None]:
    if shutil.which("redis-server") is None:
        return None, None
    from tests.redis._servers import RedisServer

    server = RedisServer(shutil.which("redis-server") or "redis-server")
    server.start()
    return server, server.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 20,000 items")
    parser.add_argument("--reps", type=int, default=3, help="run_many/SQLite pairs (first size)")
    parser.add_argument("--sizes", type=int, nargs="+", help="item counts (default N, 10 N)")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["run_many", "sqlite", "redis", "ledger", "overhead"],
        help="what to run",
    )
    parser.add_argument("--child", nargs=4, metavar=("MODE", "SERVER", "INPUTS", "STORE"))
    parser.add_argument("--ledger", nargs=3, metavar=("STORE", "PATH", "COUNT"))
    args = parser.parse_args(argv)
    if args.child:
        mode, server, inputs, store = args.child
        run = (
            overhead(Path(inputs), store)
            if mode == "overhead"
            else one(mode, server, Path(inputs), store)
        )
        print(json.dumps(asyncio.run(run)))
        return 0
    if args.ledger:
        kind, path, count = args.ledger
        cost = asyncio.run(_ledger(kind, path, int(count)))
        print(json.dumps({"store": kind, "us_per_item": round(cost, 1)}))
        return 0
    small = 2_000 if args.quick else 10_000
    redis, redis_url = _redis_url() if "redis" in args.modes else (None, None)
    try:
        with tempfile.TemporaryDirectory() as folder:
            for count in args.sizes or (small, small * 10):
                first = count == min(args.sizes or [small])
                _runs(args.modes, count, args.reps if first else 0, folder, redis_url)
            if "ledger" in args.modes:
                _ledgers(small, folder, redis_url)
    finally:
        if redis is not None:
            redis.close()
    return 0


def _runs(modes: list[str], count: int, reps: int, folder: str, redis_url: str | None) -> None:
    """The measured runs on ``count`` items, on a benchmark server of their own (its
    lifetime is bounded). With ``reps``, run_many and SQLite alternate that many times (a
    shared machine is noisy: compare medians, and the ratios pair by pair)."""
    inputs = Path(folder) / f"in-{count}.jsonl"
    write_inputs(inputs, count)
    pair = [mode for mode in ("run_many", "sqlite") if mode in modes]
    order = pair * reps if reps else [mode for mode in pair if mode == "sqlite"]
    order += ["redis"] if redis_url and "redis" in modes else []
    order += ["overhead"] * max(reps, 1) if "overhead" in modes else []
    runs: list[dict[str, Any]] = []
    with bench_server(100, 10) as server:
        for number, mode in enumerate(order):
            store = (
                f"{redis_url}#bench-{count}" if mode == "redis" else f"{folder}/{count}-{number}.db"
            )
            run = _run_child(["--child", mode, server, str(inputs), store])
            run["count"] = count
            runs.append(run)
            print(json.dumps(run), flush=True)
    if reps and len(pair) == 2:
        print(json.dumps(_summary(runs, count)), flush=True)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _summary(runs: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """Medians and ranges of run_many and SQLite, and their ratios pair by pair."""
    by_mode: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_mode.setdefault(run["mode"], []).append(run)
    out: dict[str, Any] = {"summary": count}
    for mode in ("run_many", "sqlite", "overhead"):
        for field in ("cpu_us_per_item", "per_second"):
            values = [run[field] for run in by_mode.get(mode, []) if field in run]
            if values:
                out[f"{mode}_{field}"] = [_median(values), min(values), max(values)]
    pairs = list(zip(by_mode["run_many"], by_mode["sqlite"], strict=False))
    for field in ("cpu_us_per_item", "per_second"):
        ratios = [round(batch[field] / base[field], 3) for base, batch in pairs]
        out[f"sqlite_over_run_many_{field}"] = [_median(ratios), min(ratios), max(ratios)]
    return out


def _ledgers(count: int, folder: str, redis_url: str | None) -> None:
    kinds = ["sqlite"] + (["aiosqlite"] if importlib.util.find_spec("aiosqlite") else [])
    kinds += ["redis"] if redis_url else []
    for kind in kinds:
        where = f"{redis_url}#ledger" if kind == "redis" else f"{folder}/ledger-{kind}.db"
        print(json.dumps(_run_child(["--ledger", kind, where, str(count)])), flush=True)


async def _ledger(kind: str, where: str, count: int) -> float:
    from replicate_async.batch import open_store

    if kind == "aiosqlite":
        return await ledger_cost(AioSQLiteLedger(where), count)
    store, _ = open_store(where)
    return await ledger_cost(store, count)


if __name__ == "__main__":
    sys.exit(main())
