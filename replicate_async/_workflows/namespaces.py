"""``client.predictions`` and ``client.trainings``: a resource's typed operations side by
side with the workflows on top of them (``wait``, ``run``, ``stream``), by composition.

The operations are the resource's own bound methods (same signatures, no extra hop); the
workflows are handed to the client's :class:`~replicate_async._workflows.runner.Runner`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from .._config import PollPolicy
from .._core.raw import RawStream
from .._core.sse import ServerSentEvent
from .._literals import WebhookEvent
from ..models import Prediction, Training
from ..resources import Predictions, Trainings
from .drive import OnCreated, outcome
from .runner import RUN_HOLD, Runner

__all__ = ["PredictionsAPI", "TrainingsAPI"]


class PredictionsAPI:
    """Predictions: runs of a model version on an input (``client.predictions``).

    ``create``, ``get``, ``cancel`` and ``list`` are the typed operations of
    ``POST /predictions``, ``GET /predictions/{id}``, ``POST /predictions/{id}/cancel``
    and ``GET /predictions``; ``wait``, ``run`` and ``stream`` are workflows on them.
    """

    __slots__ = ("_runner", "cancel", "create", "get", "list")

    def __init__(self, operations: Predictions, runner: Runner) -> None:
        self.create = operations.create
        self.get = operations.get
        self.cancel = operations.cancel
        self.list = operations.list
        self._runner = runner

    async def wait(
        self,
        prediction: Prediction | str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        cancel_on_abandon: bool = True,
    ) -> Prediction:
        """Poll until the prediction reaches a terminal status and return it.

        Terminal means ``succeeded``, ``failed``, ``canceled``, ``aborted`` (or an unknown
        status with ``completed_at`` set); check ``.status`` or use :meth:`run` to get
        errors raised. When ``timeout`` passes, the awaiting task is cancelled or polling
        fails for good, the prediction is canceled on the server first
        (``cancel_on_abandon=False`` leaves it running) and
        :class:`~replicate_async.PredictionTimeoutError`, ``CancelledError`` or the
        polling error (``.prediction`` names the prediction) is raised.
        """
        return await self._runner.wait(
            prediction,
            timeout=timeout,
            poll=poll,
            cancel_on_abandon=cancel_on_abandon,
        )

    async def run(
        self,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        timeout: float | None = None,
        wait: bool | int | None = RUN_HOLD,
        cancel_after: float | timedelta | str | None = None,
        webhook: str | None = None,
        webhook_events_filter: Iterable[WebhookEvent] | None = None,
        on_created: OnCreated | None = None,
    ) -> Prediction:
        """Like :meth:`AsyncReplicate.run` (same arguments, one deadline, cancel on
        abandon, same errors naming the prediction, ``on_created``), but return the
        succeeded :class:`Prediction` itself: its ``id``, ``metrics``, ``logs`` and
        ``output``."""
        prediction = await self._runner.run(
            ref,
            input=input,
            deployment=deployment,
            timeout=timeout,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            on_created=on_created,
        )
        outcome(prediction)
        return prediction

    def stream(
        self,
        prediction: Prediction,
        *,
        idle_timeout: float = 60.0,
        max_reconnects: int = 5,
        raise_on_error: bool = True,
    ) -> RawStream[ServerSentEvent]:
        """Server-sent events (``output``, ``logs``, ``error``, ``done``, and any new type)
        of a prediction whose model streams, resuming dropped connections;
        ``.last_response`` is the raw response that opened the latest connection."""
        return self._runner.events(
            prediction,
            idle_timeout=idle_timeout,
            max_reconnects=max_reconnects,
            raise_on_error=raise_on_error,
        )


class TrainingsAPI:
    """Trainings: fine-tuning a model version into a new version of your own model
    (``client.trainings``): the typed ``create``, ``get``, ``cancel`` and ``list``, and
    ``wait``."""

    __slots__ = ("_runner", "cancel", "create", "get", "list")

    def __init__(self, operations: Trainings, runner: Runner) -> None:
        self.create = operations.create
        self.get = operations.get
        self.cancel = operations.cancel
        self.list = operations.list
        self._runner = runner

    async def wait(
        self,
        training: Training | str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        cancel_on_abandon: bool = True,
    ) -> Training:
        """Poll until the training is terminal and return it (see ``predictions.wait``)."""
        return await self._runner.wait_training(
            training,
            timeout=timeout,
            poll=poll,
            cancel_on_abandon=cancel_on_abandon,
        )
