"""``client.predictions`` and ``client.trainings``: the typed operations of the resources,
plus the workflows on top of them (``wait``, ``stream``, ``run``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from .._checks import config as check_config
from .._checks import numbers as check_numbers
from .._checks import url as check_url
from .._config import PollPolicy
from .._core.http import HTTPCore
from .._core.raw import RawStream
from .._core.sse import ServerSentEvent
from .._core.sse_reader import prediction_events
from .._literals import WebhookEvent
from ..models import Prediction, Training
from ..resources import Predictions, Trainings
from ..resources._base import InputPreparer
from .drive import OnCreated, Poll, drive, outcome
from .run import RUN_HOLD, RunHost, run_prediction

__all__ = ["PredictionsAPI", "TrainingsAPI"]

R = TypeVar("R", Prediction, Training)


async def wait_for(
    get: Callable[[str], Awaitable[R]],
    cancel: Callable[[str], Awaitable[R]],
    host: RunHost,
    run: R | str,
    cls: type[R],
    timeout: float | None,
    poll: PollPolicy | None,
    cancel_on_abandon: bool,
) -> R:
    """The shared body of ``predictions.wait`` and ``trainings.wait``: check the arguments,
    fetch the run if given by id, then poll it to a terminal status under one deadline."""
    timeout = check_numbers.seconds(timeout, "timeout")
    check_config.poll_policy(poll)
    if not isinstance(run, cls):
        run = await get(check_url.require_id(run, cls.__name__.lower()))
    return await drive(
        start=run,
        advance=Poll(get, poll or host.config.poll, host.config.clock),
        cancel=cancel,
        timeout=timeout,
        inflight=host.inflight,
        cancel_on_abandon=cancel_on_abandon,
    )


class PredictionsAPI(Predictions):
    """Predictions: runs of a model version on an input (``client.predictions``)."""

    __slots__ = ("_host",)

    def __init__(self, http: HTTPCore, prepare: InputPreparer, host: RunHost) -> None:
        super().__init__(http, prepare)
        self._host = host

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
        return await wait_for(
            self.get,
            self.cancel,
            self._host,
            prediction,
            Prediction,
            timeout,
            poll,
            cancel_on_abandon,
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
        prediction = await run_prediction(
            self._host,
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
        return RawStream(
            lambda sink: prediction_events(
                self._http,
                prediction,
                clock=self._host.config.clock,
                idle_timeout=idle_timeout,
                max_reconnects=max_reconnects,
                raise_on_error=raise_on_error,
                sink=sink,
            )
        )


class TrainingsAPI(Trainings):
    """Trainings: fine-tuning a model version into a new version of your own model."""

    __slots__ = ("_host",)

    def __init__(self, http: HTTPCore, prepare: InputPreparer, host: RunHost) -> None:
        super().__init__(http, prepare)
        self._host = host

    async def wait(
        self,
        training: Training | str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        cancel_on_abandon: bool = True,
    ) -> Training:
        """Poll until the training is terminal and return it (see ``predictions.wait``)."""
        return await wait_for(
            self.get, self.cancel, self._host, training, Training, timeout, poll, cancel_on_abandon
        )
