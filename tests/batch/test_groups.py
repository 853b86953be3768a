"""Group commit: writes made in the same turn of the loop go to the store together, in
the order they were made, and each caller gets its own outcome."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from replicate_async.batch._groups import Groups, Outcome


async def test_ops_of_one_turn_run_as_one_group_in_order_each_with_its_own_outcome() -> None:
    groups: list[list[str]] = []

    async def run(ops: list[str]) -> list[Outcome]:
        groups.append(ops)
        await asyncio.sleep(0)
        return [(op != "bad", ValueError(op) if op == "bad" else op.upper()) for op in ops]

    commit: Groups[str] = Groups(run)
    results = await asyncio.gather(
        *(commit.submit(op) for op in ("a", "bad", "c")), return_exceptions=True
    )
    assert groups == [["a", "bad", "c"]]
    assert results[0] == "A"
    assert isinstance(results[1], ValueError)
    assert results[2] == "C"
    # What arrives while a group is out goes in the next one.
    first = asyncio.ensure_future(commit.submit("d"))
    await asyncio.sleep(0)  # "d" is out
    rest = [asyncio.ensure_future(commit.submit(op)) for op in ("e", "f")]
    assert await asyncio.gather(first, *rest) == ["D", "E", "F"]
    assert groups[1:] == [["d"], ["e", "f"]]


async def test_a_group_that_fails_as_a_whole_fails_every_caller_and_the_next_group_runs() -> None:
    calls = 0

    async def run(ops: list[int]) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("store unreachable")
        if calls == 2:
            return []  # a broken store: too few outcomes must not leave callers waiting
        return [(True, op * 2) for op in ops]

    commit: Groups[int] = Groups(run)
    failed = await asyncio.gather(commit.submit(1), commit.submit(2), return_exceptions=True)
    assert [type(exc) for exc in failed] == [ConnectionError, ConnectionError]
    with pytest.raises(RuntimeError, match="1 ops, 0 outcomes"):
        await asyncio.wait_for(commit.submit(3), 5)
    assert await asyncio.wait_for(commit.submit(4), 5) == 8


async def test_cut_splits_the_queue_into_runs_and_drain_waits_for_all() -> None:
    groups: list[list[tuple[str, bool]]] = []

    async def run(ops: list[tuple[str, bool]]) -> list[Outcome]:
        groups.append(ops)
        return [(True, name) for name, _ in ops]

    def cut(queue: deque[tuple[str, bool]]) -> int:
        size = 1
        while size < len(queue) and queue[size][1] == queue[0][1]:
            size += 1
        return size

    commit: Groups[tuple[str, bool]] = Groups(run, cut=cut)
    ops = [("a", True), ("b", True), ("scan", False), ("c", True)]
    waiting = [asyncio.ensure_future(commit.submit(op)) for op in ops]
    await asyncio.sleep(0)  # all four submitted
    await commit.drain()
    assert [[name for name, _ in group] for group in groups] == [["a", "b"], ["scan"], ["c"]]
    assert await asyncio.gather(*waiting) == ["a", "b", "scan", "c"]
