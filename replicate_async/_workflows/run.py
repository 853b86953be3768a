"""Running a model: pick the create endpoint, fit the hold inside one deadline, drive it.

The workflows are typed against :class:`RunHost`, the few things they use of a client
(its configuration, its in-flight registry, the create/get/cancel operations and a way to
make :class:`FileOutput` objects), never against the client class itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from .._checks import numbers as check_numbers
from .._checks.url import split_version_ref
from .._config import ClientConfig
from .._literals import WebhookEvent
from ..exceptions import InvalidArgumentError
from ..models import Prediction
from .drive import OnCreated, Poll, drive, outcome
from .file_outputs import FileOutput, wrap_output
from .inflight import InFlight

__all__ = [
    "RUN_HOLD",
    "RunHost",
    "creator",
    "deadline_options",
    "output_of",
    "run_prediction",
]

#: Seconds ``run()`` asks the server to hold its create (``Prefer: wait=5``) by default:
#: a model that answers within it costs one request; a slower one is polled, and its id
#: is known after at most this long, so an abandoned run can be canceled early.
RUN_HOLD = 5
#: Seconds a ``Prefer: wait`` hold ends before ``run(timeout=...)``'s deadline.
WAIT_HEADROOM = 0.5
_VERSION_ID = re.compile(r"[0-9a-f]{64}")


class CreatesOn(Protocol):
    """A create endpoint taking its target (a model or deployment name) first."""

    async def create(
        self,
        target: str,
        /,
        *,
        input: Mapping[str, Any],
        webhook: str | None = ...,
        webhook_events_filter: Iterable[WebhookEvent] | None = ...,
        stream: bool | None = ...,
        wait: bool | int | None = ...,
        cancel_after: float | timedelta | str | None = ...,
    ) -> Prediction:
        """Create a prediction on ``target``."""
        ...


class HasCreate(Protocol):
    """A namespace with a ``predictions`` create endpoint (models, deployments)."""

    @property
    def predictions(self) -> CreatesOn:
        """The namespace's prediction create endpoint."""
        ...


class PredictionOps(Protocol):
    """``POST /predictions``, ``GET /predictions/{id}``, ``POST .../cancel``."""

    async def create(
        self,
        *,
        version: str,
        input: Mapping[str, Any],
        webhook: str | None = ...,
        webhook_events_filter: Iterable[WebhookEvent] | None = ...,
        stream: bool | None = ...,
        wait: bool | int | None = ...,
        cancel_after: float | timedelta | str | None = ...,
    ) -> Prediction:
        """Create a prediction of a version."""
        ...

    async def get(self, prediction_id: str, /) -> Prediction:
        """Fetch a prediction."""
        ...

    async def cancel(self, prediction_id: str, /) -> Prediction:
        """Cancel a prediction."""
        ...


class RunHost(Protocol):
    """What the run workflows use of a client."""

    @property
    def config(self) -> ClientConfig:
        """Polling policy and clock."""
        ...

    @property
    def inflight(self) -> InFlight:
        """Runs in flight and background cancels, closed with the client."""
        ...

    @property
    def predictions(self) -> PredictionOps:
        """Create, get and cancel predictions."""
        ...

    @property
    def models(self) -> HasCreate:
        """Create predictions of official models."""
        ...

    @property
    def deployments(self) -> HasCreate:
        """Create predictions on deployments."""
        ...

    def file_output(self, url: str) -> FileOutput:
        """A downloadable output file."""
        ...


def creator(
    host: RunHost,
    ref: str | None,
    *,
    deployment: str | None,
    input: Mapping[str, Any],
    **options: Any,
) -> Callable[[], Awaitable[Prediction]]:
    """Validate a run's target now and return the coroutine function that creates it.

    ``ref`` is ``"owner/name"`` (an official model), ``"owner/name:version"`` or a bare
    64-hex version id; ``deployment="owner/name"`` runs on a deployment instead.
    ``options`` are the create's keyword arguments (``wait``, ``webhook``, ...).
    """
    if (ref is None) == (deployment is None):
        raise InvalidArgumentError("pass exactly one of a model ref or deployment=")
    if not isinstance(input, Mapping):
        raise TypeError(f"input must be a mapping, got {type(input).__name__}")
    if deployment is not None:
        split_version_ref(deployment)
        target, on = deployment, host.deployments.predictions
    else:
        assert ref is not None
        if isinstance(ref, str) and _VERSION_ID.fullmatch(ref):
            version: str | None = ref
        else:
            version = ref if split_version_ref(ref)[2] is not None else None
        if version is not None:
            pinned, predictions = version, host.predictions

            async def on_version() -> Prediction:
                return await predictions.create(version=pinned, input=input, **options)

            return on_version
        target, on = ref, host.models.predictions

    async def on_target() -> Prediction:
        return await on.create(target, input=input, **options)

    return on_target


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


async def run_prediction(
    host: RunHost,
    ref: str | None,
    *,
    input: Mapping[str, Any],
    deployment: str | None,
    timeout: float | None,
    wait: bool | int | None,
    cancel_after: float | timedelta | str | None,
    webhook: str | None = None,
    webhook_events_filter: Iterable[WebhookEvent] | None = None,
    on_created: OnCreated | None = None,
) -> Prediction:
    """Create and poll a prediction to a terminal status under one deadline (any status);
    ``on_created`` gets the prediction as soon as its create returns."""
    timeout = check_numbers.seconds(timeout, "timeout")
    check_numbers.prefer_wait(wait)
    wait, cancel_after = deadline_options(timeout, wait, cancel_after)
    create = creator(
        host,
        ref,
        deployment=deployment,
        input=input,
        wait=wait,
        cancel_after=cancel_after,
        webhook=webhook,
        webhook_events_filter=webhook_events_filter,
    )
    predictions = host.predictions
    return await drive(
        start=create,
        advance=Poll(predictions.get, host.config.poll, host.config.clock),
        cancel=predictions.cancel,
        timeout=timeout,
        inflight=host.inflight,
        on_created=on_created,
    )


def output_of(host: RunHost, prediction: Prediction, use_file_output: bool) -> Any:
    """A succeeded prediction's output, with URLs wrapped as files when asked."""
    output = outcome(prediction)
    return wrap_output(output, host.file_output) if use_file_output else output
