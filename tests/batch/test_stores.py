"""The store protocol, the same in both stores: what a claim records, and that a worker
whose claim was taken over can no longer write."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from replicate_async.batch import BatchStore, SQLiteStore, open_store
from replicate_async.batch._redis import RedisStore
from replicate_async.batch._sqlite import CHECKPOINT_EVERY


@pytest.fixture
async def ledger(store: str) -> AsyncIterator[BatchStore]:
    opened, _ = open_store(store)
    await opened.open({"ref": "fake/echo", "key": "id"})
    try:
        yield opened
    finally:
        await opened.aclose()


def rows(*keys: str) -> list[tuple[str, str]]:
    return [(key, json.dumps({"text": key})) for key in keys]


async def test_a_claim_records_the_intent_and_holds_the_oldest_items(ledger: BatchStore) -> None:
    assert await ledger.add(rows("a", "b", "c")) == 3
    assert await ledger.add(rows("b", "d")) == 1  # "b" is there already
    now = time.time()
    claimed = await ledger.claim("w1", now, 30.0, 2)
    assert [item.key for item in claimed] == ["a", "b"]
    first = claimed[0]
    assert (first.state, first.attempts, first.owner) == ("creating", 1, "w1")
    assert first.intent_at == pytest.approx(now)
    assert first.lease_until == pytest.approx(now + 30.0)
    assert first.input == {"text": "a"}
    only = await ledger.claim("w1", now, 30.0, 5, key="d")
    assert [item.key for item in only] == ["d"]
    stats = await ledger.stats()
    assert stats.counts["creating"] == 3
    assert stats.counts["pending"] == 1


async def test_a_taken_over_claim_can_no_longer_be_written_by_its_old_holder(
    ledger: BatchStore,
) -> None:
    await ledger.add(rows("a", "b"))
    now = time.time()
    await ledger.claim("old", now - 100, 30.0, 2)  # its lease ended 70 s ago
    only = await ledger.take_over("new", now, 30.0, (), key="b")
    assert [item.key for item in only] == ["b"]
    taken = await ledger.take_over("new", now, 30.0, ())
    assert [item.key for item in taken] == ["a"]
    assert not await ledger.update("a", {"state": "running", "prediction_id": "p1"}, owner="old")
    assert await ledger.update("a", {"state": "running", "prediction_id": "p1"}, owner="new")
    assert await ledger.known_predictions(["p1", "p2"]) == {"p1"}
    item = await ledger.get("a")
    assert item is not None
    assert (item.state, item.prediction_id, item.owner) == ("running", "p1", "new")


async def test_live_claims_are_left_alone_unless_their_holder_is_dead(ledger: BatchStore) -> None:
    await ledger.add(rows("a", "b"))
    now = time.time()
    await ledger.claim("alive", now, 30.0, 1)
    await ledger.claim("dead", now, 30.0, 1)
    assert await ledger.owners() == {"alive", "dead"}
    taken = await ledger.take_over("me", now, 30.0, {"dead"})
    assert [item.key for item in taken] == ["b"]
    await ledger.renew("alive", now + 120)
    later = await ledger.take_over("me", now + 60, 30.0, ())  # "b" (mine) had expired
    assert [item.key for item in later] == ["b"]  # "a" was renewed: still held
    await ledger.release("alive")
    assert [item.key for item in await ledger.take_over("me", now, 30.0, ())] == ["a"]


async def test_moves_and_scans_in_the_order_added(ledger: BatchStore) -> None:
    keys = [f"k{i:02d}" for i in range(25)]
    await ledger.add(rows(*keys))
    for item in await ledger.claim("w", time.time(), 30.0, 25):
        state = "failed" if int(item.key[1:]) % 2 else "succeeded"
        assert await ledger.update(item.key, {"state": state, "finished_at": time.time()})
    found, after = [], 0
    while after is not None:
        page, after = await ledger.scan(["failed"], after, 4)
        found += [item.key for item in page]
    assert found == [key for key in keys if int(key[1:]) % 2]
    assert await ledger.move(["failed"], "pending", time.time()) == 12
    stats = await ledger.stats()
    assert (stats.counts["pending"], stats.counts["succeeded"]) == (12, 13)
    assert not await ledger.update("k00", {"state": "canceled"}, state="running")


async def test_an_operation_that_fails_in_a_group_commit_fails_alone(tmp_path: Path) -> None:
    # Operations that arrive together are committed in one transaction; one that raises
    # there must fail only its own caller, while the others still land on disk.
    ledger = SQLiteStore(tmp_path / "group.db")
    try:
        await ledger.open({"ref": "fake/echo", "key": "id"})
        bad: list[tuple[str, str]] = [("x",)]  # type: ignore[list-item]  # one value short
        added = await asyncio.gather(
            ledger.add(rows("a")), ledger.add(bad), ledger.add(rows("b")), return_exceptions=True
        )
        assert added[0] == 1
        assert added[2] == 1
        assert isinstance(added[1], sqlite3.ProgrammingError)
    finally:
        await ledger.aclose()
    reopened = SQLiteStore(tmp_path / "group.db")
    try:
        assert (await reopened.stats()).counts == {"pending": 2}
        assert await reopened.get("x") is None
    finally:
        await reopened.aclose()


async def test_a_ledger_locked_by_another_process_is_waited_for_off_the_loop(
    tmp_path: Path,
) -> None:
    # Per-item writes run on the event loop with no busy timeout; one that finds the file
    # locked by another writer must wait in the ledger's thread, the loop still turning,
    # and land once the lock is gone (in order with the operations queued behind it).
    ledger = SQLiteStore(tmp_path / "locked.db")
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        await ledger.open({"ref": "fake/echo", "key": "id"})
        await ledger.add(rows("a"))
        assert len(await ledger.claim("w", time.time(), 30.0, 1)) == 1
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        write = asyncio.ensure_future(
            ledger.update("a", {"state": "running", "prediction_id": "p1"}, owner="w")
        )
        read = asyncio.ensure_future(ledger.get("a"))
        loop = asyncio.get_running_loop()
        gaps, last = [], loop.time()
        for _ in range(20):  # 0.2 s of a loop that keeps turning (blocked: a 30 s gap)
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()
        assert max(gaps) < 5
        assert not write.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 10) is True
        item = await asyncio.wait_for(read, 10)
        assert item is not None
        assert (item.state, item.prediction_id) == ("running", "p1")
    finally:
        other.close()
        await ledger.aclose()


async def test_the_log_is_checkpointed_in_the_thread_never_on_the_loop(tmp_path: Path) -> None:
    # A checkpoint copies the write-ahead log into the file with an fsync: on a slow disk
    # that holds whoever runs it for milliseconds or more. Per-item writes commit on the
    # loop, so the loop's commits must never run one; the thread does, and keeps the log
    # from growing without bound.
    ledger = SQLiteStore(tmp_path / "wal.db")
    loop_thread = threading.get_ident()
    checkpoints: list[int] = []
    try:
        await ledger.open({"ref": "fake/echo", "key": "id"})
        keys = [f"k{i:04d}" for i in range(CHECKPOINT_EVERY * 5)]
        await ledger.add(rows(*keys))
        assert ledger._conn is not None
        ledger._conn.set_trace_callback(
            lambda sql: checkpoints.append(threading.get_ident()) if "checkpoint(" in sql else None
        )
        assert len(await ledger.claim("w", time.time(), 60.0, len(keys))) == len(keys)
        wal = Path(f"{ledger.path}-wal")
        biggest = 0
        for key in keys:  # one commit each, on the loop
            assert await ledger.update(key, {"state": "running", "prediction_id": key}, owner="w")
            autocheckpoint = ledger._conn.execute("PRAGMA wal_autocheckpoint").fetchone()
            assert autocheckpoint == (0,)  # what the loop's next commit would run: nothing
            biggest = max(biggest, await asyncio.to_thread(os.path.getsize, wal))
        assert len(checkpoints) >= 4
        assert loop_thread not in checkpoints
        assert biggest < 8 * 1024 * 1024
    finally:
        await ledger.aclose()


async def test_updates_made_together_land_together_even_after_the_server_forgot_its_scripts(
    ledger: BatchStore,
) -> None:
    # Updates from the same turn of the loop share a commit (SQLite) or a pipeline (Redis);
    # a Redis that lost its scripts (restarted, SCRIPT FLUSH) runs none of the group's
    # scripts, which are then loaded and sent again.
    keys = [f"k{i}" for i in range(6)]
    await ledger.add(rows(*keys))
    assert len(await ledger.claim("w", time.time(), 30.0, 6)) == 6
    if isinstance(ledger, RedisStore):
        await ledger._redis.script_flush()
    landed = await asyncio.gather(
        *(
            ledger.update(key, {"state": "running", "prediction_id": f"p-{key}"}, owner="w")
            for key in keys
        ),
        ledger.update("k0", {"state": "running"}, owner="someone else"),
    )
    assert landed == [True] * 6 + [False]
    assert await ledger.known_predictions([f"p-{key}" for key in keys]) == {
        f"p-{key}" for key in keys
    }
    assert (await ledger.stats()).counts["running"] == 6
