"""The client's workflows, on one object it owns: run, wait, stream, fan out.

:class:`Runner` holds what every workflow uses (the request path, the configuration, the
in-flight registry and the typed operations) and nothing else. ``AsyncReplicate.run``,
``stream``, ``stream_output`` and ``run_many``, ``client.predictions.wait``/``run``/
``stream`` and ``client.trainings.wait`` hand their work to it; a batch, a model function
(``use()``) and a webhook waiter drive runs through it too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from .._checks import config as check_config
from .._checks import numbers as check_numbers
from .._checks import url as check_url
from .._config import ClientConfig, PollPolicy
from .._core.http import HTTPCore
from .._core.raw import LastResponse, RawStream
from .._core.sse import ServerSentEvent
from .._core.sse_reader import prediction_events
from .._literals import WebhookEvent
from ..exceptions import InvalidArgumentError
from ..models import Prediction, Training
from ..resources import Deployments, Models, Predictions, Trainings
from .drive import Advance, OnCreated, Poll, RunGuard, drive, outcome
from .file_outputs import FileOutput, wrap_output
from .inflight import InFlight
from .run_many import Progress, RunResult, run_many
from .stream import PredictionStream, Reading, stream_items

__all__ = ["RUN_HOLD", "Runner", "deadline_options"]

#: Seconds ``run()`` asks the server to hold its create (``Prefer: wait=5``) by default:
#: a model that answers within it costs one request; a slower one is polled, and its id
#: is known after at most this long, so an abandoned run can be canceled early.
RUN_HOLD = 5
#: Seconds a ``Prefer: wait`` hold ends before ``run(timeout=...)``'s deadline.
WAIT_HEADROOM = 0.5
_VERSION_ID = re.compile(r"[0-9a-f]{64}")

R = TypeVar("R", Prediction, Training)
#: Creates the prediction of a run, once its target and options are checked.
Create = Callable[[], Awaitable[Prediction]]


class Runner:
    """The workflows of one client, composed from its typed operations (the client owns
    one; ``with_options`` copies get their own, on the copy's request options)."""

    __slots__ = ("config", "deployments", "http", "inflight", "models", "predictions", "trainings")

    def __init__(
        self,
        http: HTTPCore,
        config: ClientConfig,
        inflight: InFlight,
        predictions: Predictions,
        models: Models,
        deployments: Deployments,
        trainings: Trainings,
    ) -> None:
        self.http = http
        self.config = config
        self.inflight = inflight
        self.predictions = predictions
        self.models = models
        self.deployments = deployments
        self.trainings = trainings

    # -- the pieces every run is made of --------------------------------------------------

    def creator(
        self,
        ref: str | None,
        *,
        deployment: str | None,
        input: Mapping[str, Any],
        **options: Any,
    ) -> Create:
        """Check a run's target now and return what creates it: a callable that returns the
        create's own coroutine (a partial of the resource method: no layer of its own).

        ``ref`` is ``"owner/name"`` (an official model), ``"owner/name:version"`` or a bare
        64-hex version id; ``deployment="owner/name"`` runs on a deployment instead.
        ``options`` are the create's keyword arguments (``wait``, ``webhook``, ...).
        """
        if (ref is None) == (deployment is None):
            raise InvalidArgumentError("pass exactly one of a model ref or deployment=")
        if not isinstance(input, Mapping):
            raise TypeError(f"input must be a mapping, got {type(input).__name__}")
        if deployment is not None:
            check_url.split_version_ref(deployment)
            return partial(self.deployments.predictions.create, deployment, input=input, **options)
        assert ref is not None
        if isinstance(ref, str) and _VERSION_ID.fullmatch(ref):
            version: str | None = ref
        else:
            version = ref if check_url.split_version_ref(ref)[2] is not None else None
        if version is not None:
            return partial(self.predictions.create, version=version, input=input, **options)
        return partial(self.models.predictions.create, ref, input=input, **options)

    def poll(self) -> Advance[Prediction]:
        """The default way a created prediction advances: polled on the client's policy."""
        return Poll(self.predictions.get, self.config.poll, self.config.clock)

    def drive_prediction(
        self,
        create: Create,
        *,
        advance: Advance[Prediction] | None = None,
        timeout: float | None,
        on_created: OnCreated | None = None,
    ) -> Coroutine[Any, Any, Prediction]:
        """Create a prediction and advance it to a terminal status under one deadline,
        canceling it on the server if abandoned (any status is returned). The coroutine
        of :func:`drive` itself, to await: no layer of its own."""
        return drive(
            start=create,
            advance=self.poll() if advance is None else advance,
            cancel=self.predictions.cancel,
            timeout=timeout,
            inflight=self.inflight,
            on_created=on_created,
        )

    def output(self, prediction: Prediction, use_file_output: bool) -> Any:
        """A succeeded prediction's output (raising for any other end), with URLs wrapped
        as :class:`FileOutput` objects when asked."""
        output = outcome(prediction)
        return wrap_output(output, self.file_output) if use_file_output else output

    def _file_outputs(self, prediction: Prediction) -> Any:
        return self.output(prediction, True)

    def file_output(self, url: str) -> FileOutput:
        """A downloadable output file, fetched through this client's request path."""
        return FileOutput(url, self.http)

    # -- the workflows --------------------------------------------------------------------

    def run(
        self,
        ref: str | None,
        *,
        input: Mapping[str, Any],
        deployment: str | None,
        timeout: float | None,
        wait: bool | int | None = RUN_HOLD,
        cancel_after: float | timedelta | str | None = None,
        webhook: str | None = None,
        webhook_events_filter: Iterable[WebhookEvent] | None = None,
        on_created: OnCreated | None = None,
    ) -> Coroutine[Any, Any, Prediction]:
        """Create and poll a prediction to a terminal status under one deadline (any
        status); ``on_created`` gets it as soon as its create returns.

        The arguments are checked here, when it is called (every caller awaits it at
        once, in its own coroutine); the coroutine returned is :func:`drive`'s."""
        timeout = check_numbers.seconds(timeout, "timeout")
        check_numbers.prefer_wait(wait)
        wait, cancel_after = deadline_options(timeout, wait, cancel_after)
        create = self.creator(
            ref,
            deployment=deployment,
            input=input,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
        )
        return self.drive_prediction(create, timeout=timeout, on_created=on_created)

    async def wait(
        self,
        prediction: Prediction | str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        cancel_on_abandon: bool = True,
    ) -> Prediction:
        """``predictions.wait``: poll a prediction to a terminal status (see there)."""
        predictions = self.predictions
        return await self._wait(
            prediction, Prediction, predictions.get, predictions.cancel,
            timeout, poll, cancel_on_abandon,
        )  # fmt: skip

    async def wait_training(
        self,
        training: Training | str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        cancel_on_abandon: bool = True,
    ) -> Training:
        """``trainings.wait``: poll a training to a terminal status."""
        trainings = self.trainings
        return await self._wait(
            training, Training, trainings.get, trainings.cancel, timeout, poll, cancel_on_abandon
        )

    async def _wait(
        self,
        run: R | str,
        cls: type[R],
        get: Callable[[str], Awaitable[R]],
        cancel: Callable[[str], Awaitable[R]],
        timeout: float | None,
        poll: PollPolicy | None,
        cancel_on_abandon: bool,
    ) -> R:
        """Check the arguments, fetch the run if given by id, then poll it to a terminal
        status under one deadline."""
        timeout = check_numbers.seconds(timeout, "timeout")
        check_config.poll_policy(poll)
        if not isinstance(run, cls):
            run = await get(check_url.require_id(run, cls.__name__.lower()))
        return await drive(
            start=run,
            advance=Poll(get, poll or self.config.poll, self.config.clock),
            cancel=cancel,
            timeout=timeout,
            inflight=self.inflight,
            cancel_on_abandon=cancel_on_abandon,
        )

    def run_many(
        self,
        ref: str | None,
        inputs: Iterable[Mapping[str, Any]],
        run_one: Callable[[Mapping[str, Any]], Awaitable[Prediction]],
        *,
        deployment: str | None,
        concurrency: int,
        use_file_output: bool,
        on_progress: Callable[[Progress], Any] | None,
    ) -> PredictionStream[RunResult]:
        """Fan ``run_one`` out over ``inputs``; its target is checked here, before anything
        runs (``run_one`` checks its own options before it is handed over)."""
        self.creator(ref, deployment=deployment, input={})
        output = self._file_outputs if use_file_output else outcome
        results = run_many(
            run_one, output, inputs, concurrency=concurrency, on_progress=on_progress
        )
        return PredictionStream(results, self.inflight)

    def stream(
        self,
        ref: str | None,
        *,
        input: Mapping[str, Any],
        deployment: str | None,
        idle_timeout: float = 60.0,
        max_reconnects: int = 5,
        raise_on_error: bool = True,
        outputs_only: bool = False,
        timeout: float | None = None,
        on_created: OnCreated | None = None,
    ) -> PredictionStream[Any]:
        """Check a stream's arguments now, and return the stream (nothing is sent until it
        is iterated). ``outputs_only`` yields just the outputs (text, or
        :class:`FileOutput`); ``timeout`` is one deadline for the create, the whole stream
        and the cancel."""
        if check_numbers.seconds(idle_timeout, "idle_timeout") is None:
            raise TypeError("idle_timeout must be a number of seconds")
        check_numbers.non_negative_int(max_reconnects, "max_reconnects")
        timeout = check_numbers.seconds(timeout, "timeout")
        _, cancel_after = deadline_options(timeout, None, None)
        create = self.creator(ref, deployment=deployment, input=input, cancel_after=cancel_after)
        guard = RunGuard(self.inflight, self.predictions.cancel, on_created=on_created)
        reading = Reading(idle_timeout, max_reconnects, raise_on_error, LastResponse())
        files = self.file_output if outputs_only else None
        items = stream_items(self.http, self.config.clock, guard, create, reading, files)
        return PredictionStream(items, self.inflight, reading.last, guard=guard, timeout=timeout)

    def events(
        self,
        prediction: Prediction,
        *,
        idle_timeout: float,
        max_reconnects: int,
        raise_on_error: bool,
    ) -> RawStream[ServerSentEvent]:
        """The server-sent events of a prediction already created, resumed across
        dropped connections (``predictions.stream``)."""
        return RawStream(
            lambda sink: prediction_events(
                self.http,
                prediction,
                clock=self.config.clock,
                idle_timeout=idle_timeout,
                max_reconnects=max_reconnects,
                raise_on_error=raise_on_error,
                sink=sink,
            )
        )


def deadline_options(
    timeout: float | None, wait: bool | int | None, cancel_after: Any
) -> tuple[bool | int | None, Any]:
    """Fit ``Prefer: wait`` inside the deadline, and let the server enforce it too."""
    if timeout is None:
        return wait, cancel_after
    # The hold ends a little before the deadline, so the prediction's id is known (and
    # it can be canceled at once) when the deadline passes during polling.
    longest = max(1, min(60, math.floor(timeout - WAIT_HEADROOM)))
    if wait is True or (isinstance(wait, int) and not isinstance(wait, bool) and wait > longest):
        wait = longest
    if cancel_after is None:
        cancel_after = max(5, math.ceil(timeout))
    return wait, cancel_after
