"""A batch worker: the loop that claims, creates, follows and records items, and that
takes over (re-attaching or reconciling) what dead workers left in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import attrs

from .._workflows.runner import Runner
from ..exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    ClientClosedError,
    InvalidArgumentError,
)
from ..models import Prediction
from ._host import WorkerConfig, dead_here
from ._inputs import Inputs, keyed_chunks
from ._items import FINISHED, BatchItem, ItemState, Tally, to_json_text
from ._reconcile import KEY_PARAM, Target, Verdict, since, verdicts
from ._save import save_output
from ._store import BatchStore

__all__ = ["Worker", "cancel_one"]

log = logging.getLogger("replicate_async.batch")

#: Statuses of a create refused by the server before anything was made (no reconcile).
_REFUSED = range(400, 500)


class Worker:
    """One run of a batch in this process, under the id ``worker``."""

    def __init__(
        self,
        host: Runner,
        store: BatchStore,
        config: WorkerConfig,
        target: Target,
        inputs: Inputs | None,
        worker: str,
        *,
        canceled: bool,
        tally: Tally,
    ) -> None:
        self._host = host
        self._store = store
        self._config = config
        self._target = target
        self._inputs = inputs
        self.worker = worker
        self.canceled = canceled
        self.tally = tally

    async def results(self) -> AsyncIterator[BatchItem]:
        """Run until the batch is finished (or canceled), yielding items as they end."""
        if self._config.out_dir is not None:
            self._config.out_dir.mkdir(parents=True, exist_ok=True)
        feeder = asyncio.ensure_future(self._feed()) if self._inputs is not None else None
        beat = asyncio.ensure_future(self._heartbeat())
        tasks: set[asyncio.Future[BatchItem | None]] = set()
        try:
            await self._recover(tasks)
            while True:
                if not self.canceled and len(tasks) < self._config.concurrency:
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
            others: list[asyncio.Future[Any]] = [beat] if feeder is None else [beat, feeder]
            for future in (*tasks, *others):
                future.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, beat, return_exceptions=True)
                if feeder is not None:
                    await asyncio.gather(feeder, return_exceptions=True)
            await asyncio.shield(self._store.release(self.worker))

    async def _feed(self) -> None:
        assert self._inputs is not None
        async for chunk in keyed_chunks(self._inputs, self._config.key):
            self.tally.added += await self._store.add(chunk)

    async def one(self, key: str) -> BatchItem:
        """Bring the one item ``key`` to its end and return it: create it if pending,
        re-attach or reconcile it if a dead worker left it in flight, wait while a live
        worker holds it, return it as recorded once it has ended (or is unresolved)."""
        beat = asyncio.ensure_future(self._heartbeat())
        tasks: set[asyncio.Future[BatchItem | None]] = set()
        try:
            while True:
                item = await self._store.get(key)
                if item is None:
                    raise InvalidArgumentError(f"this batch has no item {key!r}")
                if item.state in FINISHED or item.state == "unresolved":
                    return item
                if item.state == "pending":
                    now, lease = time.time(), self._config.lease
                    for claimed in await self._store.claim(self.worker, now, lease, 1, key=key):
                        tasks.add(asyncio.ensure_future(self._create(claimed)))
                else:
                    await self._recover(tasks, key=key)
                if not tasks:  # a live worker holds it: wait for it, or for its lease
                    await asyncio.sleep(self._config.poll)
                await asyncio.gather(*tasks)
                tasks.clear()
        finally:
            beat.cancel()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, beat, return_exceptions=True)
            await asyncio.shield(self._store.release(self.worker))

    async def _heartbeat(self) -> None:
        """Renew this worker's claims every third of a lease, and learn of a cancel made
        elsewhere. A store that fails a renewal is tried again at the next beat (claims
        whose lease ends meanwhile may be taken over: updates of this worker are then
        refused, and the new holder re-attaches or reconciles)."""
        lease = self._config.lease
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self._store.renew(self.worker, time.time() + lease)
                if (await self._store.get_meta()).get("canceled") == "1":
                    self.canceled = True
            except Exception as exc:  # any store's error: try again at the next beat
                log.warning("could not renew the claims of %s: %s", self.worker, exc)

    async def _claim(self, tasks: set[asyncio.Future[BatchItem | None]]) -> None:
        room = self._config.concurrency - len(tasks)
        items = await self._store.claim(self.worker, time.time(), self._config.lease, room)
        for item in items:
            tasks.add(asyncio.ensure_future(self._create(item)))

    async def _more(self, tasks: set[asyncio.Future[BatchItem | None]]) -> bool:
        """With nothing of ours in flight: is the batch still unfinished? Takes over what
        dead workers left on the way."""
        counts = (await self._store.stats()).counts
        if counts.get("pending", 0) and not self.canceled:
            return True
        if not counts.get("creating", 0) and not counts.get("running", 0):
            return False
        await self._recover(tasks)
        return True

    async def _recover(
        self, tasks: set[asyncio.Future[BatchItem | None]], key: str | None = None
    ) -> None:
        """Take over the in-flight items (or the one ``key``) of dead workers, and claims
        whose lease ended: re-attach the running ones, reconcile the ones caught between
        intent and id."""
        owners = await self._store.owners()
        dead = {owner for owner in owners if owner != self.worker and dead_here(owner)}
        now, lease = time.time(), self._config.lease
        items = await self._store.take_over(self.worker, now, lease, dead, key=key)
        if items:
            log.info("taking over %d in-flight items (dead: %s)", len(items), sorted(dead))
        creating = [item for item in items if item.state == "creating"]
        for item in items:
            if item.state == "running":
                self.tally.reattached += 1
                tasks.add(asyncio.ensure_future(self._follow(item, None)))
        if creating:
            for verdict, item in zip(await self._reconcile(creating), creating, strict=True):
                task = await self._apply(verdict, item)
                if task is not None:
                    tasks.add(task)

    async def cancel_stalled(self) -> int:
        """For a cancel: take over the mid-create items nobody is working on (their
        worker died), find what their creates made, and cancel it. A prediction found
        already finished is recorded as it ended; an item provably never created is
        canceled; one that cannot be told is left unresolved. Returns the cancels sent."""
        owners = await self._store.owners()
        dead = {owner for owner in owners if owner != self.worker and dead_here(owner)}
        now, lease = time.time(), self._config.lease
        items = await self._store.take_over(self.worker, now, lease, dead)
        creating = [item for item in items if item.state == "creating"]
        sent = 0
        try:
            verdicts = await self._reconcile(creating) if creating else []
            for verdict, item in zip(verdicts, creating, strict=True):
                found = verdict.prediction
                if verdict.action == "adopt" and found is not None:
                    fields = {"state": "running", "prediction_id": found.id, "started_at": now}
                    if not await self._store.update(item.key, fields, owner=self.worker):
                        continue
                    self.tally.adopted += 1
                    if found.done:
                        await self._record(item, found)
                    else:
                        sent += await cancel_one(self._host, self._store, item.key, found.id)
                elif verdict.action == "create":
                    await self._finish(item, "canceled", error="canceled; it was never created")
                else:
                    self.tally.unresolved += 1
                    await self._finish(item, "unresolved", error=verdict.why)
        finally:
            await asyncio.shield(self._store.release(self.worker))
        return sent

    # -- one item -----------------------------------------------------------------------

    def _webhook_for(self, key: str) -> str | None:
        waiter = self._config.waiter
        base = waiter.url if waiter is not None else self._config.webhook
        if base is None:
            return None
        return f"{base}{'&' if '?' in base else '?'}{urlencode({KEY_PARAM: key})}"

    async def _create(self, item: BatchItem) -> BatchItem | None:
        """Send the create whose intent the claim recorded, then follow the prediction."""
        webhook = self._webhook_for(item.key)
        options: dict[str, Any] = {"wait": self._config.wait}
        if webhook is not None:
            options.update(webhook=webhook, webhook_events_filter=["completed"])
        create = self._host.creator(self._config.ref, deployment=None, input=item.input, **options)
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
        if prediction.done and self._config.out_dir is None:
            # Answered within the create's hold: its id and its end go in one write
            # (until it lands the item is "creating", reconciled after a crash as usual).
            return await self._record(item, prediction, started=time.time())
        if not await self._store.update(
            item.key,
            {"state": "running", "prediction_id": prediction.id, "started_at": time.time()},
            owner=self.worker,
        ):
            return None  # taken over meanwhile: the new holder adopts it by reconciling
        return await self._follow(item, prediction)

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
            async for prediction in self._host.predictions.list(created_after=since(items)):
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
                self.tally.adopted += 1
                return asyncio.ensure_future(self._follow(item, verdict.prediction))
            return None
        if verdict.action == "create" and item.attempts < self._config.max_attempts:
            self.tally.recreated += 1
            await self._store.update(
                item.key,
                {"state": "pending", "owner": None, "lease_until": None},
                owner=self.worker,
            )
            return None
        state: ItemState = "failed" if verdict.action == "create" else "unresolved"
        self.tally.unresolved += state == "unresolved"
        why = verdict.why if state == "unresolved" else f"{item.attempts} attempts: {verdict.why}"
        done = asyncio.get_running_loop().create_future()
        done.set_result(await self._finish(item, state, error=why))
        return done

    async def _follow(self, item: BatchItem, prediction: Prediction | None) -> BatchItem | None:
        """Wait for the item's prediction (by id: never a second create) and record it."""
        target = prediction if prediction is not None else item.prediction_id
        assert target is not None
        try:
            if self.canceled and isinstance(target, Prediction) and not target.done:
                # The batch was canceled while this create was on its way.
                await cancel_one(self._host, self._store, item.key, target.id)
            if isinstance(target, str) or not target.done:
                target = await self._await_end(target)
        except APIError as exc:
            log.warning("lost track of %r (%s); it will be re-attached", item.key, exc)
            await self._store.update(item.key, {"lease_until": 0}, owner=self.worker)
            return None
        assert isinstance(target, Prediction)
        return await self._record(item, target)

    async def _await_end(self, target: Prediction | str) -> Prediction:
        """The prediction once terminal: from the waiter when its delivery goes there
        (a ``GET`` every ``safety_poll`` seconds in case it never comes), else polled."""
        waiter = self._config.waiter
        if waiter is None or isinstance(target, str) or not _delivered_to(target, waiter.url):
            return await self._host.wait(target, cancel_on_abandon=False)
        while True:
            try:
                return await waiter.wait(target.id, timeout=self._config.safety_poll)
            except TimeoutError:
                target = await self._host.predictions.get(target.id)
                if target.done:
                    return target
            except ClientClosedError:  # the waiter is gone: poll instead
                return await self._host.wait(target, cancel_on_abandon=False)

    async def _record(
        self, item: BatchItem, prediction: Prediction, *, started: float | None = None
    ) -> BatchItem | None:
        """Record how the item's (terminal) prediction ended (saving its files first)."""
        state: ItemState = "failed"
        if prediction.status in ("succeeded", "canceled"):
            state = "succeeded" if prediction.status == "succeeded" else "canceled"
        saved: tuple[str, ...] = ()
        if state == "succeeded" and self._config.out_dir is not None:
            saved = await save_output(
                prediction.output, self._config.out_dir, item.key, self._host.file_output
            )
        predict = (prediction.metrics or {}).get("predict_time")
        error = None if prediction.error is None else str(prediction.error)
        if state == "failed" and error is None and prediction.status not in FINISHED:
            error = f"prediction {prediction.status}"
        return await self._finish(
            item,
            state,
            prediction_id=prediction.id,
            started=started,
            output=prediction.output,
            saved=saved,
            error=error,
            predict_time=float(predict) if isinstance(predict, int | float) else None,
        )

    async def _finish(
        self,
        item: BatchItem,
        state: ItemState,
        *,
        prediction_id: str | None = None,
        started: float | None = None,
        output: Any = None,
        saved: tuple[str, ...] = (),
        error: str | None = None,
        predict_time: float | None = None,
    ) -> BatchItem | None:
        now = time.time()
        fields: dict[str, Any] = {
            "state": state,
            "finished_at": now,
            "output": to_json_text(output) if output is not None else None,
            "saved": json.dumps(list(saved)) if saved else None,
            "error": error,
            "predict_time": predict_time,
            "lease_until": None,
        }
        changed: dict[str, Any] = {}
        if prediction_id is not None:
            changed["prediction_id"] = fields["prediction_id"] = prediction_id
        if started is not None:
            changed["started_at"] = fields["started_at"] = started
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
            **changed,
        )


async def cancel_one(host: Runner, store: BatchStore, key: str, prediction_id: str) -> bool:
    """Cancel one running item's prediction, unless another caller already did: a
    compare-and-set in the ledger (running to canceled) decides who sends the cancel."""
    fields = {"state": "canceled", "finished_at": time.time()}
    if not await store.update(key, fields, state="running"):
        return False  # finished, or someone else sent the cancel
    await host.predictions.cancel(prediction_id)
    return True


def _delivered_to(prediction: Prediction, url: str) -> bool:
    """Whether the prediction's webhook is the waiter's URL (plus the batch's query)."""
    hook = prediction.webhook
    return hook is not None and hook.split("?", 1)[0] == url.split("?", 1)[0]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
