"""A durable batch: the ledger, the workers' loop, recovery after a crash, and the
operations on a whole batch (status, retry, cancel, export)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs

from .. import _validate as check
from .._run import creator
from ..exceptions import APIConnectionError, APIError, APIStatusError, InvalidArgumentError
from ..models import Prediction
from ._inputs import Inputs, KeyFunc, key_function, keyed_chunks
from ._items import FINISHED, BatchItem, BatchStatus, ItemState, canonical
from ._reconcile import KEY_PARAM, Target, Verdict, since, verdicts
from ._save import save_output
from ._store import BatchStore, Fields

if TYPE_CHECKING:
    from .._client import AsyncReplicate

__all__ = ["Batch", "open_store"]

log = logging.getLogger("replicate_async.batch")

_HOST = socket.gethostname()
#: Statuses of a create refused by the server before anything was made (no reconcile).
_REFUSED = range(400, 500)
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


def new_worker() -> str:
    """A worker id: host, process and a random part (``host:pid:hex``)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(owner: str) -> bool:
    """Whether ``owner`` was a process of this machine that no longer exists."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


@attrs.frozen
class _Config:
    ref: str | None
    key: Callable[[Mapping[str, Any]], str]
    concurrency: int
    wait: bool | int | None
    webhook: str | None
    out_dir: Path | None
    lease: float
    settle: float
    max_attempts: int
    poll: float


class Batch:
    """A batch of predictions of one model, kept in a ledger that outlives the process.

    ``async for item in batch`` adds the inputs (streamed: never all in memory; a key
    already in the ledger is skipped), resumes what an earlier run left (running items are
    waited on by id, never re-created; items caught between intent and id are reconciled
    against the server), creates the rest ``concurrency`` at a time, and yields each item
    (:class:`BatchItem`) as it finishes. Leaving the loop leaves running predictions
    running: the next run re-attaches to them.
    """

    def __init__(
        self,
        client: AsyncReplicate,
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
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidArgumentError(f"concurrency must be a positive int, got {concurrency!r}")
        if ref is not None:
            check.version_ref(ref)
        check.prefer_wait(wait)
        if webhook is not None:
            check.webhook_url(webhook)
        for name, value in (("lease", lease), ("settle", settle), ("poll", poll)):
            check.seconds(value, name)
        if max_attempts < 1:
            raise InvalidArgumentError("max_attempts must be at least 1")
        self._client = client
        self._inputs = inputs
        self._store, self._owns_store = open_store(store)
        self._key_name = key if isinstance(key, str) else getattr(key, "__name__", "function")
        self._config = _Config(
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
        )
        self.worker = worker or new_worker()
        self._target: Target | None = None
        self._canceled = False
        self._iterating = False
        self.added = 0
        """Inputs added to the ledger by this run (the others were there already)."""

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
        wanted = {"ref": ref or "", "key": self._key_name, "created_at": repr(time.time())}
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

    async def run(self) -> BatchStatus:
        """Run the batch to the end (see the class docs) and return its status."""
        async for _ in self._results():
            pass
        return await self.status()

    async def _results(self) -> AsyncIterator[BatchItem]:
        if self._iterating:
            raise RuntimeError("this batch is already being run")
        self._iterating = True
        await self._open()
        if self._config.out_dir is not None:
            self._config.out_dir.mkdir(parents=True, exist_ok=True)
        feeder = asyncio.ensure_future(self._feed()) if self._inputs is not None else None
        beat = asyncio.ensure_future(self._heartbeat())
        tasks: set[asyncio.Future[BatchItem | None]] = set()
        try:
            await self._recover(tasks)
            while True:
                if not self._canceled and len(tasks) < self._config.concurrency:
                    await self._claim(tasks)
                if feeder is not None and feeder.done():
                    feeder.result()  # an error in the inputs is raised here, at once
                    feeder = None
                if not tasks:
                    if feeder is None and not await self._more(tasks):
                        return
                    if not tasks:
                        await asyncio.sleep(0.02 if feeder is not None else self._config.poll)
                        continue
                timeout = 0.05 if feeder is not None else None
                done, _ = await asyncio.wait(
                    tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    tasks.discard(task)
                    item = task.result()
                    if item is not None:
                        yield item
        finally:
            self._iterating = False
            others: list[asyncio.Future[Any]] = [beat] if feeder is None else [beat, feeder]
            for future in (*tasks, *others):
                future.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, beat, return_exceptions=True)
                if feeder is not None:
                    await asyncio.gather(feeder, return_exceptions=True)
            await asyncio.shield(self._store.release(self.worker))
            await self.aclose()

    async def _feed(self) -> None:
        assert self._inputs is not None
        async for chunk in keyed_chunks(self._inputs, self._config.key):
            self.added += await self._store.add(chunk)

    async def _heartbeat(self) -> None:
        lease = self._config.lease
        while True:
            await asyncio.sleep(lease / 3)
            await self._store.renew(self.worker, time.time() + lease)
            if (await self._store.get_meta()).get("canceled") == "1":
                self._canceled = True

    async def _claim(self, tasks: set[asyncio.Future[BatchItem | None]]) -> None:
        room = self._config.concurrency - len(tasks)
        items = await self._store.claim(self.worker, time.time(), self._config.lease, room)
        for item in items:
            tasks.add(asyncio.ensure_future(self._create(item)))

    async def _more(self, tasks: set[asyncio.Future[BatchItem | None]]) -> bool:
        """With nothing of ours in flight: is the batch still unfinished? Takes over what
        dead workers left on the way."""
        counts = (await self._store.stats()).counts
        if counts.get("pending", 0) and not self._canceled:
            return True
        if not counts.get("creating", 0) and not counts.get("running", 0):
            return False
        await self._recover(tasks)
        return True

    async def _recover(self, tasks: set[asyncio.Future[BatchItem | None]]) -> None:
        """Take over the in-flight items of dead workers (and expired claims): re-attach
        the running ones, reconcile the ones caught between intent and id."""
        owners = await self._store.owners()
        dead = {owner for owner in owners if owner != self.worker and _dead_here(owner)}
        items = await self._store.take_over(self.worker, time.time(), self._config.lease, dead)
        if items:
            log.info("taking over %d in-flight items (dead: %s)", len(items), sorted(dead))
        creating = [item for item in items if item.state == "creating"]
        for item in items:
            if item.state == "running":
                tasks.add(asyncio.ensure_future(self._follow(item, None)))
        if creating:
            for verdict, item in zip(await self._reconcile(creating), creating, strict=True):
                task = await self._apply(verdict, item)
                if task is not None:
                    tasks.add(task)

    # -- one item -----------------------------------------------------------------------

    def _webhook_for(self, key: str) -> str | None:
        base = self._config.webhook
        if base is None:
            return None
        return f"{base}{'&' if '?' in base else '?'}{urlencode({KEY_PARAM: key})}"

    async def _create(self, item: BatchItem) -> BatchItem | None:
        """Send the create whose intent the claim recorded, then follow the prediction."""
        webhook = self._webhook_for(item.key)
        options: dict[str, Any] = {"wait": self._config.wait}
        if webhook is not None:
            options.update(webhook=webhook, webhook_events_filter=["completed"])
        create = creator(
            self._client, self._config.ref, deployment=None, input=item.input, **options
        )
        try:
            prediction = await create()
        except APIStatusError as exc:
            if exc.status in _REFUSED:  # refused: nothing was created, nothing to reconcile
                return await self._finish(item, "failed", error=_describe(exc))
            return await self._after_unknown(item, exc)
        except APIConnectionError as exc:
            return await self._after_unknown(item, exc)
        except InvalidArgumentError as exc:  # refused before sending
            return await self._finish(item, "failed", error=_describe(exc))
        if not await self._store.update(
            item.key,
            {"state": "running", "prediction_id": prediction.id, "started_at": time.time()},
            owner=self.worker,
        ):
            return None  # taken over meanwhile: the new holder adopts it by reconciling
        return await self._follow(attrs.evolve(item, state="running"), prediction)

    async def _after_unknown(self, item: BatchItem, exc: APIError) -> BatchItem | None:
        """The create may or may not have made a prediction: ask the server."""
        log.info("create of %r may have succeeded (%s): reconciling", item.key, exc)
        (verdict,) = await self._reconcile([item])
        if verdict.action == "create":
            verdict = attrs.evolve(verdict, why=_describe(exc))
        task = await self._apply(verdict, item)
        return await task if task is not None else None

    async def _reconcile(self, items: list[BatchItem]) -> list[Verdict]:
        assert self._target is not None
        latest = max(item.intent_at or 0.0 for item in items)
        delay = latest + self._config.settle - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        target = self._target
        candidates: list[Prediction] = []
        try:
            async for prediction in self._client.predictions.list(created_after=since(items)):
                if target.matches(prediction):
                    candidates.append(prediction)
        except APIError as exc:
            why = f"could not list predictions to check ({_describe(exc)})"
            return [Verdict(item.key, "unresolved", why=why) for item in items]
        known = await self._store.known_predictions([p.id for p in candidates])
        fresh = [p for p in candidates if p.id not in known]
        return verdicts(items, fresh, target, by_key=self._config.webhook is not None)

    async def _apply(
        self, verdict: Verdict, item: BatchItem
    ) -> asyncio.Future[BatchItem | None] | None:
        """Act on a verdict: adopt (follow that prediction), create again, or report."""
        if verdict.action == "adopt":
            assert verdict.prediction is not None
            fields = {
                "state": "running",
                "prediction_id": verdict.prediction.id,
                "started_at": time.time(),
            }
            if await self._store.update(item.key, fields, owner=self.worker):
                log.info("adopted %s for %r", verdict.prediction.id, item.key)
                return asyncio.ensure_future(self._follow(item, verdict.prediction))
            return None
        if verdict.action == "create" and item.attempts < self._config.max_attempts:
            await self._store.update(
                item.key,
                {"state": "pending", "owner": None, "lease_until": None},
                owner=self.worker,
            )
            return None
        state: ItemState = "failed" if verdict.action == "create" else "unresolved"
        why = verdict.why if state == "unresolved" else f"{item.attempts} attempts: {verdict.why}"
        done = asyncio.get_running_loop().create_future()
        done.set_result(await self._finish(item, state, error=why))
        return done

    async def _follow(self, item: BatchItem, prediction: Prediction | None) -> BatchItem | None:
        """Wait for the item's prediction (by id: never a second create) and record it."""
        target = prediction if prediction is not None else item.prediction_id
        assert target is not None
        try:
            if isinstance(target, str) or not target.done:
                target = await self._client.predictions.wait(target, cancel_on_abandon=False)
            if self._canceled and not target.done:
                await self._cancel_one(item.key, target.id)
        except APIError as exc:
            log.warning("lost track of %r (%s); it will be re-attached", item.key, exc)
            await self._store.update(item.key, {"lease_until": 0}, owner=self.worker)
            return None
        assert isinstance(target, Prediction)
        item = attrs.evolve(item, prediction_id=target.id)
        state: ItemState = "failed"
        if target.status in ("succeeded", "canceled"):
            state = "succeeded" if target.status == "succeeded" else "canceled"
        saved: tuple[str, ...] = ()
        if state == "succeeded" and self._config.out_dir is not None:
            saved = await save_output(
                target.output, self._config.out_dir, item.key, self._client.file_output
            )
        predict = (target.metrics or {}).get("predict_time")
        error = None if target.error is None else str(target.error)
        if state == "failed" and error is None and target.status not in FINISHED:
            error = f"prediction {target.status}"
        return await self._finish(
            item,
            state,
            output=target.output,
            saved=saved,
            error=error,
            predict_time=float(predict) if isinstance(predict, int | float) else None,
        )

    async def _finish(
        self,
        item: BatchItem,
        state: ItemState,
        *,
        output: Any = None,
        saved: tuple[str, ...] = (),
        error: str | None = None,
        predict_time: float | None = None,
    ) -> BatchItem | None:
        now = time.time()
        fields: Fields = {
            "state": state,
            "finished_at": now,
            "output": canonical(output) if output is not None else None,
            "saved": json.dumps(list(saved)) if saved else None,
            "error": error,
            "predict_time": predict_time,
            "lease_until": None,
        }
        if not await self._store.update(item.key, fields, owner=self.worker):
            return None
        return attrs.evolve(
            item,
            state=state,
            finished_at=now,
            output=output,
            saved=saved,
            error=error,
            predict_time=predict_time,
            lease_until=None,
        )

    # -- the whole batch ----------------------------------------------------------------

    async def status(self) -> BatchStatus:
        """Counts by state, rate, ETA and predict seconds spent."""
        return BatchStatus.of(await self._store.stats())

    async def items(self, states: Collection[ItemState] | None = None) -> AsyncIterator[BatchItem]:
        """Every item (in ``states``, or all), in the order they were added."""
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
        return await self._store.move(states, "pending", time.time())

    async def cancel(self) -> int:
        """Stop the batch: pending items become canceled, and every running prediction is
        canceled on the server, exactly once (a compare-and-set in the ledger decides who
        sends it). Items caught mid-create are canceled by their worker when the id comes.
        Returns how many predictions were canceled."""
        await self._open()
        self._canceled = True
        await self._store.set_meta("canceled", "1")
        await self._store.move(["pending"], "canceled", time.time())
        sent = 0
        async for item in self.items(["running"]):
            if item.prediction_id is not None and await self._cancel_one(
                item.key, item.prediction_id
            ):
                sent += 1
        return sent

    async def _cancel_one(self, key: str, prediction_id: str) -> bool:
        fields = {"state": "canceled", "finished_at": time.time()}
        if not await self._store.update(key, fields, state="running"):
            return False  # finished, or someone else sent the cancel
        await self._client.predictions.cancel(prediction_id)
        return True

    async def export(self, path: str | os.PathLike[str]) -> int:
        """Write every item as a JSON line keyed by the caller's id (``key``, ``state``,
        ``prediction_id``, ``output``...); returns how many."""
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
    owner, name, version = check.split_version_ref(ref)
    return Target(model=f"{owner}/{name}", version=version)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
