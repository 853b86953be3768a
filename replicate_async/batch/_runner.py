"""A durable batch: the ledger, the workers' loop, recovery after a crash, and the
operations on a whole batch (status, retry, cancel, export)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from .._checks import body as check_body
from .._checks import numbers as check_numbers
from .._checks import url as check_url
from .._workflows.runner import Runner
from ..exceptions import InvalidArgumentError
from ._host import CompletionWaiter, WorkerConfig, dead_here, new_worker
from ._inputs import Inputs, KeyFunc, key_function
from ._items import BatchItem, BatchStatus, ItemState, Tally, canonical
from ._reconcile import Target
from ._store import BatchStore
from ._worker import Worker, cancel_one

__all__ = ["Batch", "open_store"]

_PAGE = 500


def open_store(store: BatchStore | str | os.PathLike[str]) -> tuple[BatchStore, bool]:
    """The store for ``store``: a :class:`BatchStore`, a SQLite path, or a ``redis://`` URL
    (``#prefix`` names the batch). Returns it and whether it is ours to close."""
    if isinstance(store, str) and store.startswith(("redis://", "rediss://", "unix://")):
        from ._redis import RedisStore

        url, _, prefix = store.partition("#")
        return RedisStore.from_url(url, prefix=prefix or "replicate-batch"), True
    if isinstance(store, str | os.PathLike):
        from ._sqlite import SQLiteStore

        return SQLiteStore(store), True
    for name in ("claim", "update", "take_over", "scan", "stats"):
        if not callable(getattr(store, name, None)):
            raise TypeError(f"store must be a path, a redis:// URL or a BatchStore, got {store!r}")
    return store, False


class Batch:
    """A batch of predictions of one model, kept in a ledger that outlives the process.

    ``async for item in batch`` adds the inputs (streamed: never all in memory; a key
    already in the ledger is skipped), resumes what an earlier run left (running items are
    waited on by id, never re-created; items caught between intent and id are reconciled
    against the server), creates the rest ``concurrency`` at a time, and yields each item
    (:class:`BatchItem`) as it finishes. Leaving the loop leaves running predictions
    running: the next run re-attaches to them.

    ``waiter=`` (a started :class:`~replicate_async.WebhookWaiter`; with
    ``bus=fleet.bus`` a delivery to any worker of a fleet counts) sends each create's
    ``completed`` webhook to ``waiter.url`` (the item's key in its query) and takes the
    completion from there instead of polling; a prediction whose delivery has not come
    within ``safety_poll`` seconds is checked with one ``GET`` (then waited on again).
    Predictions re-attached from an earlier run whose webhook went elsewhere are polled.
    """

    def __init__(
        self,
        runner: Runner,
        ref: str | None,
        inputs: Inputs | None,
        *,
        store: BatchStore | str | os.PathLike[str],
        key: str | KeyFunc = "id",
        concurrency: int = 32,
        wait: bool | int | None = 5,
        webhook: str | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        lease: float = 60.0,
        settle: float = 10.0,
        max_attempts: int = 3,
        worker: str | None = None,
        poll: float = 1.0,
        waiter: CompletionWaiter | None = None,
        safety_poll: float = 60.0,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidArgumentError(f"concurrency must be a positive int, got {concurrency!r}")
        if ref is not None:
            check_url.version_ref(ref)
        check_numbers.prefer_wait(wait)
        if webhook is not None:
            check_body.webhook_url(webhook)
        if waiter is not None and webhook is not None:
            raise InvalidArgumentError("pass either webhook= or waiter= (whose URL is used)")
        if waiter is not None and not callable(getattr(waiter, "wait", None)):
            raise TypeError(f"waiter must be a WebhookWaiter, got {type(waiter).__name__}")
        checked = (
            ("lease", lease),
            ("settle", settle),
            ("poll", poll),
            ("safety_poll", safety_poll),
        )
        for name, value in checked:
            check_numbers.seconds(value, name)
        if max_attempts < 1:
            raise InvalidArgumentError("max_attempts must be at least 1")
        self._runner = runner
        self._inputs = inputs
        self._store, self._owns_store = open_store(store)
        self._key_name = key if isinstance(key, str) else getattr(key, "__name__", "function")
        self._config = WorkerConfig(
            ref=ref,
            key=key_function(key),
            concurrency=concurrency,
            wait=wait,
            webhook=webhook,
            out_dir=Path(out_dir) if out_dir is not None else None,
            lease=lease,
            settle=settle,
            max_attempts=max_attempts,
            poll=poll,
            waiter=waiter,
            safety_poll=safety_poll,
        )
        self.worker = worker or new_worker()
        self._target: Target | None = None
        self._worker: Worker | None = None
        self._canceled = False
        self.tally = Tally()
        """What this batch's runs in this process did: added, re-attached, adopted..."""

    def __repr__(self) -> str:
        return f"<Batch {self._config.ref!r} store={self._store!r} worker={self.worker!r}>"

    @property
    def store(self) -> BatchStore:
        """The ledger's store."""
        return self._store

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store, if the batch opened it (the ledger stays on disk)."""
        if self._owns_store:
            await self._store.aclose()

    # -- opening ------------------------------------------------------------------------

    async def _open(self) -> Target:
        if self._target is not None:
            return self._target
        ref, webhook = self._config.ref, self._config.webhook
        wanted: dict[str, str] = {}
        if ref is not None:  # a new ledger records what it runs; an existing one tells
            wanted = {"ref": ref, "key": self._key_name, "created_at": repr(time.time())}
            if webhook is not None:
                wanted["webhook"] = webhook
        meta = await self._store.open(wanted)
        if not meta.get("ref"):
            raise InvalidArgumentError("this batch has no model yet: pass the model ref")
        if ref is not None and meta["ref"] != ref:
            raise InvalidArgumentError(
                f"this batch runs {meta['ref']!r}, not {ref!r} "
                "(use another store, or the same model)"
            )
        self._config = attrs.evolve(self._config, ref=meta["ref"], webhook=meta.get("webhook"))
        self._canceled = meta.get("canceled") == "1"
        self._target = _target_of(meta["ref"])
        return self._target

    # -- the loop -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[BatchItem]:
        return self._results()

    async def run_one(self, key: str, input: Mapping[str, Any]) -> BatchItem:
        """Run one input under ``key`` (say, a task queue's job id) and return its item
        when it ends. Calling it again with the same key (a task redelivered after a crash)
        never pays twice: a finished item comes back as recorded, a running one is waited
        on by its prediction id, one caught mid-create is reconciled with the server, and
        one that a live worker holds is waited for. The input of a key already in the
        ledger is the one recorded first."""
        target = await self._open()
        await self._store.add([(str(key), canonical(dict(input)))])
        return await self._helper(target).one(str(key))

    def _helper(self, target: Target) -> Worker:
        """A worker of its own (under a sub-id of this batch's) for one job."""
        worker = f"{self.worker}/{uuid.uuid4().hex[:6]}"
        return Worker(
            self._runner,
            self._store,
            self._config,
            target,
            None,
            worker,
            canceled=self._canceled,
            tally=self.tally,
        )

    async def run(self) -> BatchStatus:
        """Run the batch to the end (see the class docs) and return its status."""
        async for _ in self._results():
            pass
        return await self.status()

    async def _results(self) -> AsyncIterator[BatchItem]:
        if self._worker is not None:
            raise RuntimeError("this batch is already being run")
        target = await self._open()
        worker = Worker(
            self._runner,
            self._store,
            self._config,
            target,
            self._inputs,
            self.worker,
            canceled=self._canceled,
            tally=self.tally,
        )
        self._worker = worker
        try:
            async for item in worker.results():
                yield item
        finally:
            self._worker = None
            await self.aclose()

    # -- the whole batch ----------------------------------------------------------------

    async def status(self) -> BatchStatus:
        """Counts by state, rate, ETA and predict seconds spent."""
        await self._open()
        stats = await self._store.stats()
        stalled: dict[str, int] = {}
        if stats.counts.get("creating") or stats.counts.get("running"):
            dead = {owner for owner in await self._store.owners() if dead_here(owner)}
            stalled = await self._store.stalled(time.time(), dead)
        return BatchStatus.of(stats, stalled)

    async def items(self, states: Collection[ItemState] | None = None) -> AsyncIterator[BatchItem]:
        """Every item (in ``states``, or all), in the order they were added."""
        await self._open()
        after: int | None = 0
        while after is not None:
            page, after = await self._store.scan(states, after, _PAGE)
            for item in page:
                yield item

    async def retry(self, failed_only: bool = True, *, unresolved: bool = False) -> int:
        """Put failed items (and canceled ones, unless ``failed_only``) back to pending, to
        be created again by the next run; returns how many. ``unresolved=True`` also
        re-creates the items whose earlier create could not be proved absent: only after
        you checked, as that may pay twice."""
        await self._open()
        states: list[ItemState] = ["failed"] if failed_only else ["failed", "canceled"]
        if unresolved:
            states.append("unresolved")
        await self._store.set_meta("canceled", "0")
        self._canceled = False
        if self._worker is not None:
            self._worker.canceled = False
        return await self._store.move(states, "pending", time.time())

    async def cancel(self) -> int:
        """Stop the batch: pending items become canceled, and every running prediction is
        canceled on the server, exactly once (a compare-and-set in the ledger decides who
        sends it). Items caught mid-create are canceled by their worker when the id comes;
        those whose worker died are reconciled with the server here (waiting out
        ``settle`` after their intent) and what their creates made is canceled too.
        Returns how many predictions were canceled."""
        target = await self._open()
        self._canceled = True
        if self._worker is not None:
            self._worker.canceled = True
        await self._store.set_meta("canceled", "1")
        await self._store.move(["pending"], "canceled", time.time())
        sent = await self._helper(target).cancel_stalled()
        async for item in self.items(["running"]):
            if item.prediction_id is not None and await cancel_one(
                self._runner, self._store, item.key, item.prediction_id
            ):
                sent += 1
        return sent

    async def export(self, path: str | os.PathLike[str]) -> int:
        """Write every item as a JSON line keyed by the caller's id (``key``, ``state``,
        ``prediction_id``, ``output``...); returns how many."""
        await self._open()
        count = 0
        out = await asyncio.to_thread(open, path, "w", encoding="utf-8")
        try:
            async for item in self.items():
                out.write(json.dumps(item.to_json()) + "\n")  # buffered: no disk wait here
                count += 1
        finally:
            await asyncio.to_thread(out.close)
        return count


def _target_of(ref: str) -> Target:
    if "/" not in ref:
        return Target(model=None, version=ref)
    owner, name, version = check_url.split_version_ref(ref)
    return Target(model=f"{owner}/{name}", version=version)
