"""The embedded ledger: one SQLite file (WAL), no server, safe for several processes.

One connection; every operation is a function run on it. Operations that arrive in the
same turn of the event loop are committed together, in one transaction (group commit),
and each caller resumes only once its own operation is committed: the intent to create
is on disk before the create is sent.

Where a group runs is measured, not assumed (``benchmarks/batch.py``). The per-item
operations (claim, record an id, record an end, read one item) run on the event loop
itself: with WAL and ``synchronous=NORMAL`` a commit is a write to the page cache (no
fsync), a fraction of a millisecond per group, while sending every group to a thread made a
batch cost a median 13-22 % more CPU than ``run_many`` instead of 3-6 %, most of it two threads
passing the GIL back and forth around every statement. The loop never waits on a lock for
them: they use no busy timeout, and a group that finds the file locked by another process
runs in the ledger's thread instead, which waits (up to 30 s). Everything that scans the
table (stats, scans, renewals, take-overs, moves, adding inputs) always runs in that thread,
and so does every group under ``synchronous="FULL"`` (which also survives the machine
losing power, at an fsync per commit). ``synchronous=NORMAL`` survives a killed process.

Checkpoints (copying the write-ahead log back into the file, with an fsync) never run on
the loop: SQLite's automatic checkpoint, which the commit that fills the log would run, is
on only while a group runs in the thread, and after every :data:`CHECKPOINT_EVERY` commits
made on the loop the next group runs in the thread, followed by a passive checkpoint there.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from ._groups import Groups, Outcome
from ._items import IN_FLIGHT, BatchItem, ItemState, LedgerStats
from ._store import SETTABLE, Fields

__all__ = ["SQLiteStore"]

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

#: How long a group in the ledger's thread waits for a lock held by another process.
_PATIENCE_MS = 30_000
#: Commits made on the loop between two checkpoints in the thread (each writes a few
#: pages, so the log stays near SQLite's own automatic threshold of 1,000 pages).
CHECKPOINT_EVERY = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    input TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    prediction_id TEXT,
    owner TEXT,
    lease_until REAL,
    intent_at REAL,
    started_at REAL,
    finished_at REAL,
    output TEXT,
    saved TEXT,
    error TEXT,
    predict_time REAL
);
CREATE INDEX IF NOT EXISTS items_pending ON items (seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS items_flight ON items (owner) WHERE state IN ('creating', 'running');
DROP INDEX IF EXISTS items_state;
DROP INDEX IF EXISTS items_prediction;
"""
# Two small indexes besides the keys', each of the items in one stage: the pending ones in
# order (claims), and the in-flight ones by holder (renewals, take-overs, the stalled count:
# never more entries than items in flight). Recording an id and an end touches only the
# second, whose few pages stay hot: measured on raw sqlite3 (claim 64, ids and ends in groups
# of 10), 13.9 us per item against 18.5 with every state and prediction id indexed. Finding
# prediction ids (reconciling) and counting by state (stats) scan the table, in the ledger's
# thread. (The DROPs upgrade a ledger made with the old indexes.)
#: The in-flight items, spelled as ``items_flight``'s condition so queries can use it.
_FLIGHT = f"state IN ({', '.join(repr(state) for state in IN_FLIGHT)})"
_COLUMNS = (
    "key, input, state, attempts, prediction_id, owner, lease_until, intent_at, "
    "started_at, finished_at, output, saved, error, predict_time"
)


def row_item(row: Sequence[Any]) -> BatchItem:
    """A :class:`BatchItem` from a row of ``_COLUMNS`` (stored JSON decoded)."""
    return BatchItem(
        key=row[0],
        input=json.loads(row[1]),
        state=row[2],
        attempts=row[3],
        prediction_id=row[4],
        owner=row[5],
        lease_until=row[6],
        intent_at=row[7],
        started_at=row[8],
        finished_at=row[9],
        output=json.loads(row[10]) if row[10] is not None else None,
        saved=tuple(json.loads(row[11])) if row[11] else (),
        error=row[12],
        predict_time=row[13],
    )


def _marks(values: Collection[Any]) -> str:
    return ",".join("?" * len(values))


class SQLiteStore:
    """A batch ledger in a SQLite file (created if missing)."""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        self.path = os.fspath(path)
        self._synchronous = synchronous
        self._thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        #: Group commits of ``(op, quick)``: a quick op may run on the loop.
        self._groups: Groups[tuple[Op, bool]] = Groups(self._run_here_or_there, cut=self._cut)
        #: Commits made on the loop since the last checkpoint (in the thread).
        self._loop_commits = 0
        #: UPDATE statements by the fields they set (a handful of shapes, built once).
        self._updates: dict[tuple[tuple[str, ...], bool, bool], str] = {}

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- the connection ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_PATIENCE_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints: in the thread only
            conn.executescript(_SCHEMA)
            conn.execute("PRAGMA busy_timeout = 0")  # (the thread sets it around its groups)
            self._conn = conn
        return self._conn

    def _run_waiting(self, ops: list[Op]) -> list[Outcome]:
        """In the thread: run a group, waiting as long as the file is locked elsewhere."""
        conn = self._connect()
        conn.execute(f"PRAGMA busy_timeout = {_PATIENCE_MS}")
        conn.execute("PRAGMA wal_autocheckpoint = 1000")  # (SQLite's default) here only
        try:
            return self._run_group(conn, ops)
        finally:
            if self._loop_commits >= CHECKPOINT_EVERY:
                self._loop_commits = 0
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA busy_timeout = 0")

    def _run_group(self, conn: sqlite3.Connection, ops: list[Op]) -> list[Outcome]:
        """Run ``ops`` in one transaction. They run back to back (the common case: none
        fails); if one raises, the transaction is rolled back and the group is run again
        with each op in a savepoint of its own, so that only that op's caller gets the
        error and the others still commit. (A savepoint around every op would cost two
        more statements per op, on every op.)"""
        conn.execute("BEGIN IMMEDIATE")  # (a busy ledger's error goes to every caller)
        try:
            results: list[Outcome] = [(True, op(conn)) for op in ops]
            conn.execute("COMMIT")
            return results
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(ops) == 1:
                raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return self._run_isolated(conn, ops)

    @staticmethod
    def _run_isolated(conn: sqlite3.Connection, ops: list[Op]) -> list[Outcome]:
        """Run ``ops`` in one transaction, each in a savepoint of its own."""
        results: list[Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, op(conn)))
                    conn.execute("RELEASE op")
                except Exception as exc:  # this op's caller gets it; the others commit
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results

    async def _do(self, op: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """Run ``op`` in the next group commit; ``quick``: it touches a few rows by key
        (or the head of the pending index) and may run on the loop."""
        result: T = await self._groups.submit((op, quick))
        return result

    def _on_loop(self, quick: bool) -> bool:
        return (
            quick
            and self._conn is not None
            and self._synchronous == "NORMAL"
            and self._loop_commits < CHECKPOINT_EVERY  # else: to the thread, to checkpoint
        )

    def _cut(self, queue: deque[tuple[Op, bool]]) -> int:
        """The longest run of queued ops that can run in the same place."""
        here = self._on_loop(queue[0][1])
        size = 1
        while size < len(queue) and self._on_loop(queue[size][1]) == here:
            size += 1
        return size

    async def _run_here_or_there(self, group: list[tuple[Op, bool]]) -> list[Outcome]:
        ops = [op for op, _ in group]
        if self._on_loop(group[0][1]):
            try:
                outcomes = self._run_group(self._connect(), ops)
                self._loop_commits += 1
                return outcomes
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                # Locked by another process: wait for it in the thread.
        if self._thread is None:  # (again, after aclose: a closed store reopens on use)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="replicate-batch-sqlite")
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._run_waiting, ops
        )

    # -- the protocol --------------------------------------------------------------------

    async def open(self, meta: Mapping[str, str]) -> dict[str, str]:
        def op(conn: sqlite3.Connection) -> dict[str, str]:
            conn.executemany(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", list(meta.items())
            )
            return dict(conn.execute("SELECT name, value FROM meta").fetchall())

        return await self._do(op)

    async def get_meta(self) -> dict[str, str]:
        return await self._do(
            lambda conn: dict(conn.execute("SELECT name, value FROM meta").fetchall()), quick=True
        )

    async def set_meta(self, name: str, value: str) -> None:
        await self._do(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value)
            ),
            quick=True,
        )

    async def add(self, rows: Sequence[tuple[str, str]]) -> int:
        def op(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO items (key, input) VALUES (?, ?)", rows)
            return conn.total_changes - before

        return await self._do(op)

    async def get(self, key: str) -> BatchItem | None:
        sql = f"SELECT {_COLUMNS} FROM items WHERE key = ?"
        row = await self._do(lambda conn: conn.execute(sql, (key,)).fetchone(), quick=True)
        return row_item(row) if row is not None else None

    async def claim(
        self, owner: str, now: float, lease: float, limit: int, *, key: str | None = None
    ) -> list[BatchItem]:
        def op(conn: sqlite3.Connection) -> list[BatchItem]:
            rows = conn.execute(
                "UPDATE items SET state = 'creating', attempts = attempts + 1, owner = ?, "
                "lease_until = ?, intent_at = ?, prediction_id = NULL, error = NULL "
                "WHERE seq IN (SELECT seq FROM items WHERE state = 'pending' "
                f"AND (? IS NULL OR key = ?) ORDER BY seq LIMIT ?) RETURNING {_COLUMNS}",
                (owner, now + lease, now, key, key, limit),
            ).fetchall()
            return [row_item(row) for row in rows]

        return await self._do(op, quick=True)

    async def update(
        self, key: str, fields: Fields, *, owner: str | None = None, state: str | None = None
    ) -> bool:
        names = tuple(fields)
        shape = (names, owner is not None, state is not None)
        sql = self._updates.get(shape)
        if sql is None:
            unknown = set(names) - SETTABLE
            if unknown:
                raise ValueError(f"unknown item fields: {sorted(unknown)}")
            sets = ", ".join(f"{name} = ?" for name in names)
            where = "key = ?" + (" AND owner = ?" if owner is not None else "")
            where += " AND state = ?" if state is not None else ""
            sql = self._updates[shape] = f"UPDATE items SET {sets} WHERE {where}"
        args = [*fields.values(), key]
        if owner is not None:
            args.append(owner)
        if state is not None:
            args.append(state)
        return bool(await self._do(lambda conn: conn.execute(sql, args).rowcount, quick=True))

    async def renew(self, owner: str, until: float) -> None:
        await self._do(
            lambda conn: conn.execute(
                f"UPDATE items SET lease_until = ? WHERE owner = ? AND {_FLIGHT}",
                (until, owner),
            )
        )

    async def release(self, owner: str) -> None:
        await self._do(
            lambda conn: conn.execute(
                f"UPDATE items SET lease_until = 0 WHERE owner = ? AND {_FLIGHT}", (owner,)
            )
        )

    async def owners(self) -> set[str]:
        rows = await self._do(
            lambda conn: conn.execute(
                f"SELECT DISTINCT owner FROM items WHERE {_FLIGHT}"
            ).fetchall()
        )
        return {row[0] for row in rows if row[0] is not None}

    async def stalled(self, now: float, dead: Collection[str]) -> dict[str, int]:
        dead = list(dead)
        sql = (
            f"SELECT state, COUNT(*) FROM items WHERE {_FLIGHT} AND "
            f"(lease_until IS NULL OR lease_until < ? OR owner IN ({_marks(dead)})) "
            "GROUP BY state"
        )
        return dict(await self._do(lambda conn: conn.execute(sql, (now, *dead)).fetchall()))

    async def take_over(
        self,
        owner: str,
        now: float,
        lease: float,
        dead: Collection[str],
        *,
        key: str | None = None,
    ) -> list[BatchItem]:
        dead = list(dead)

        def op(conn: sqlite3.Connection) -> list[BatchItem]:
            rows = conn.execute(
                f"UPDATE items SET owner = ?, lease_until = ? WHERE {_FLIGHT} AND "
                f"(lease_until IS NULL OR lease_until < ? OR owner IN ({_marks(dead)})) "
                f"AND (? IS NULL OR key = ?) RETURNING {_COLUMNS}",
                (owner, now + lease, now, *dead, key, key),
            ).fetchall()
            return [row_item(row) for row in rows]

        return await self._do(op)

    async def move(self, states: Collection[ItemState], to: ItemState, now: float) -> int:
        states = list(states)
        finished = now if to in ("succeeded", "failed", "canceled") else None
        sql = (
            "UPDATE items SET state = ?, owner = NULL, lease_until = NULL, finished_at = ? "
            f"WHERE state IN ({_marks(states)})"
        )
        return int(await self._do(lambda conn: conn.execute(sql, (to, finished, *states)).rowcount))

    async def known_predictions(self, ids: Collection[str]) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        sql = f"SELECT prediction_id FROM items WHERE prediction_id IN ({_marks(ids)})"
        rows = await self._do(lambda conn: conn.execute(sql, ids).fetchall())
        return {row[0] for row in rows}

    async def scan(
        self, states: Collection[ItemState] | None, after: int, limit: int
    ) -> tuple[list[BatchItem], int | None]:
        where, args = "seq > ?", [after]
        if states is not None:
            wanted: list[Any] = list(states)
            where += f" AND state IN ({_marks(wanted)})"
            args += wanted
        sql = f"SELECT seq, {_COLUMNS} FROM items WHERE {where} ORDER BY seq LIMIT ?"
        rows = await self._do(lambda conn: conn.execute(sql, [*args, limit]).fetchall())
        more = rows[-1][0] if len(rows) == limit else None
        return [row_item(row[1:]) for row in rows], more

    async def stats(self) -> LedgerStats:
        def op(conn: sqlite3.Connection) -> LedgerStats:
            counts = dict(conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"))
            first, last, spend = conn.execute(
                "SELECT MIN(intent_at), MAX(finished_at), TOTAL(predict_time) FROM items"
            ).fetchone()
            return LedgerStats(counts, first, last, float(spend or 0.0))

        return await self._do(op)

    async def aclose(self) -> None:
        """Close the connection and end its thread (the store reopens if used again)."""

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._groups.drain()  # let queued operations commit first
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, close)
            thread.shutdown(wait=False)
