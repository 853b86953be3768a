"""Runs predictions and trainings as asyncio tasks: statuses, logs, output, SSE, webhooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Literal

from ._behaviours import ModelBehaviour, Plan, make_plan, sse_text
from ._clock import clock_sleep
from ._records import FakePrediction, Version
from ._state import Store
from ._util import NS, dumps
from ._webhooks import WebhookDispatcher

__all__ = ["Runner"]


class Runner:
    """The fake's scheduler. One task per live prediction, plus one per ``Cancel-After``."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        webhooks: WebhookDispatcher,
    ) -> None:
        self.store = store
        self.clock = clock
        self.webhooks = webhooks
        self.origin = ""
        self.closing = False
        self._live: dict[str, FakePrediction] = {}
        self._deadlines: dict[str, asyncio.Task[None]] = {}

    def now_ns(self) -> int:
        """The injected clock, in integer nanoseconds."""
        return int(self.clock() * NS)

    # ----------------------------------------------------------------------- control

    def start(self, prediction: FakePrediction) -> None:
        """Begin running a freshly stored prediction or training."""
        loop = asyncio.get_running_loop()
        self._live[prediction.id] = prediction
        prediction.task = loop.create_task(self._run(prediction))
        self._webhook(prediction, "start")
        if prediction.deadline_ns is not None:
            self._deadlines[prediction.id] = loop.create_task(self._deadline(prediction))

    async def cancel(self, prediction: FakePrediction, reason: str = "api") -> None:
        """Cancel a running prediction and wait until it is ``canceled`` (or ``aborted``)."""
        if prediction.done:
            return
        prediction.cancel_reason = reason
        task = prediction.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait({task})
        if prediction.forced is not None:
            self._finish_forced(prediction)
        else:
            self._finish_canceled(prediction)

    async def wait(self, prediction: FakePrediction, seconds: float) -> None:
        """Hold until the prediction is terminal, ``seconds`` pass on the clock, or shutdown."""
        if prediction.done or self.closing:
            return
        timer = asyncio.ensure_future(clock_sleep(self.clock, seconds))
        try:
            while not prediction.done and not timer.done() and not self.closing:
                changed = asyncio.ensure_future(prediction.wait_changed().wait())
                await asyncio.wait({timer, changed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
        finally:
            timer.cancel()

    @property
    def live(self) -> int:
        """How many predictions/trainings are still running."""
        return len(self._live)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until nothing is running (bounded by ``timeout`` real seconds)."""
        async with asyncio.timeout(timeout):
            while self._live:
                tasks = {p.task for p in self._live.values() if p.task is not None}
                if not tasks:
                    break
                await asyncio.wait(tasks)

    async def shutdown(self) -> None:
        """Stop every task without finishing the predictions, and release waiters."""
        self.closing = True
        tasks: set[asyncio.Task[None]] = set(self._deadlines.values())
        self._deadlines.clear()
        for prediction in list(self._live.values()):
            prediction.cancel_reason = "shutdown"
            if prediction.task is not None:
                tasks.add(prediction.task)
            prediction.notify()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._live.clear()

    # ------------------------------------------------------------------------ the run

    async def _run(self, p: FakePrediction) -> None:
        try:
            behaviour = p.behaviour or ModelBehaviour(duration=0.0)
            await clock_sleep(self.clock, behaviour.queue_time)
            p.status = "processing"
            p.started_ns = self.now_ns()
            p.notify()
            plan = self._plan(p, behaviour)
            delay = (behaviour.duration or 0.0) / max(1, len(plan.steps))
            first_output_ns: int | None = None
            for step, value in plan.steps:
                await self._held(p)
                await clock_sleep(self.clock, delay)
                if step == "output" and first_output_ns is None:
                    first_output_ns = self.now_ns()
                self._step(p, plan, step, value)
            await self._held(p)
            if plan.error is not None:
                self._finish(p, "failed", plan, first_output_ns)
            else:
                if p.is_training:
                    p.output = self._training_output(p)
                self._finish(p, "succeeded", plan, first_output_ns)
        except asyncio.CancelledError:
            if p.cancel_reason in (None, "shutdown"):
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if p.forced is not None:
                self._finish_forced(p)
            else:
                self._finish_canceled(p)

    def _plan(self, p: FakePrediction, behaviour: ModelBehaviour) -> Plan:
        if p.is_training:
            steps: list[tuple[Literal["log", "output"], Any]] = [
                ("log", "Training started"),
                ("log", "Training complete"),
            ]
            plan = Plan(steps, False, "text")
            if behaviour.outcome == "fail":
                plan.error = behaviour.error
            return plan
        file_url = f"{self.origin}/delivery/{p.id}/out-{{i}}.png"
        return make_plan(p.kind, p.input, file_url=file_url, sync=p.sync, behaviour=behaviour)

    def _step(self, p: FakePrediction, plan: Plan, step: str, value: Any) -> None:
        if step == "log":
            p.logs += f"{value}\n"
            self._event(p, "logs", value)
            self._webhook(p, "logs")
        else:
            if plan.list_output:
                if not isinstance(p.output, list):
                    p.output = []
                p.output.append(value)
            else:
                p.output = value
            self._event(p, "output", sse_text(value))
            self._webhook(p, "output")
        p.notify()

    # ------------------------------------------------------------------ scripting

    async def _held(self, p: FakePrediction) -> None:
        while p.release is not None:
            await p.release.wait()

    def hold(self, p: FakePrediction) -> None:
        """Keep a run from advancing (it stays where it is) until :meth:`release`."""
        if not p.done and p.release is None:
            p.release = asyncio.Event()

    def release(self, p: FakePrediction) -> None:
        """Let a held run go on."""
        release, p.release = p.release, None
        if release is not None:
            release.set()

    async def settle(
        self, p: FakePrediction, status: str, *, output: Any = None, error: str | None = None
    ) -> None:
        """End a run now as ``succeeded`` (with ``output``, if given), ``failed`` (with
        ``error``) or ``canceled``; a no-op on a finished run."""
        if p.done:
            return
        if status == "canceled":
            await self.cancel(p)
            return
        p.forced = (status, output, error)
        await self.cancel(p, reason="scripted")

    def _finish_forced(self, p: FakePrediction) -> None:
        if p.done or p.forced is None:
            return
        status, output, error = p.forced
        p.forced = None
        p.release = None
        if p.started_ns is None:
            p.started_ns = self.now_ns()
        if output is not None:
            p.output = output
        failure = (error or "Prediction failed") if status == "failed" else None
        plan = Plan([], False, "text", error=failure)
        self._finish(p, status, plan, None)

    async def _deadline(self, p: FakePrediction) -> None:
        assert p.deadline_ns is not None
        await clock_sleep(self.clock, (p.deadline_ns - self.now_ns()) / NS)
        if not p.done:
            await self.cancel(p, reason="deadline")

    def _training_output(self, p: FakePrediction) -> dict[str, str]:
        destination = self.store.get_model(p.destination or "")
        version_id = self.store.ids.hex(32)
        if destination is not None:
            base = self.store.get_version(p.version_id or "")
            version = Version(
                id=version_id,
                model=destination.full_name,
                created_ns=self.now_ns(),
                cog_version=base.cog_version if base is not None else "0.9.4",
                openapi_schema=base.openapi_schema if base is not None else None,
            )
            self.store.add_version(destination, version)
        return {
            "version": f"{p.destination}:{version_id}",
            "weights": f"{self.origin}/delivery/{p.id}/weights.tar",
        }

    # ------------------------------------------------------------------- finishing

    def _metrics(self, p: FakePrediction) -> None:
        end = p.completed_ns or self.now_ns()
        if p.started_ns is not None:
            p.metrics["predict_time"] = round((end - p.started_ns) / NS, 9)
        p.metrics["total_time"] = round((end - p.created_ns) / NS, 9)

    def _finish(
        self, p: FakePrediction, status: str, plan: Plan, first_output_ns: int | None
    ) -> None:
        p.completed_ns = self.now_ns()
        p.status = status
        p.metrics.update(plan.metrics)
        self._metrics(p)
        if first_output_ns is not None and p.started_ns is not None:
            p.metrics["time_to_first_token"] = round((first_output_ns - p.started_ns) / NS, 9)
        if "output_token_count" in plan.metrics:
            predict = p.metrics.get("predict_time") or 0.0
            count = plan.metrics["output_token_count"]
            p.metrics["tokens_per_second"] = count / predict if predict else float(count)
        if status == "failed":
            p.error = plan.error
            self._event(p, "error", json.dumps({"detail": plan.error}), with_id=False)
            self._event(p, "done", json.dumps({"reason": "error"}), with_id=False)
        else:
            self._event(p, "done", "{}", with_id=False)
        self._completed(p)

    def _finish_canceled(self, p: FakePrediction) -> None:
        if p.done:
            return
        aborted = p.cancel_reason == "deadline" and p.status == "starting"
        p.status = "aborted" if aborted else "canceled"
        p.completed_ns = self.now_ns()
        self._metrics(p)
        self._event(p, "done", json.dumps({"reason": "canceled"}), with_id=False)
        self._completed(p)

    def _completed(self, p: FakePrediction) -> None:
        self._live.pop(p.id, None)
        deadline = self._deadlines.pop(p.id, None)
        if deadline is not None and deadline is not asyncio.current_task():
            deadline.cancel()
        self._webhook(p, "completed")
        p.notify()

    # ------------------------------------------------------------- events & webhooks

    def _event(self, p: FakePrediction, event: str, data: str, *, with_id: bool = True) -> None:
        if p.stream_kind is None:
            return
        event_id: str | None = None
        if with_id:
            second = int(self.clock())
            counter = 0
            for prev_id, _, _ in reversed(p.events):
                if prev_id is not None:
                    prev_second, _, prev_counter = prev_id.partition(":")
                    if prev_second == str(second):
                        counter = int(prev_counter) + 1
                    break
            event_id = f"{second}:{counter}"
            p.event_positions[event_id] = len(p.events)
        p.events.append((event_id, event, data))

    def _webhook(self, p: FakePrediction, event: str) -> None:
        if p.webhook is None:
            return
        body: bytes | None = None
        if self.webhooks.wanted(p, event):
            body = dumps(p.to_json(self.origin))
        self.webhooks.emit(p, event, body)
