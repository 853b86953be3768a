"""Prediction workflows: one deadline, waiting, cancellation that cancels, SSE, fan-out.

The heart is :func:`drive`: it creates (or takes) a prediction or training and polls it
to a terminal status under one deadline. Whenever it is abandoned, by the deadline or by
the caller's task being cancelled, it cancels the run on the server before re-raising,
shielded from further cancellation and bounded in time, so nothing keeps billing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sized
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from . import _validate as check
from ._config import PollPolicy
from ._files import wrap_output
from ._sse import ServerSentEvent, SSEDecoder
from ._validate import split_version_ref
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    ModelError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionError,
    PredictionTimeoutError,
    StreamError,
)
from .models import Prediction, Status, Training

if TYPE_CHECKING:
    from ._client import AsyncReplicate
    from ._http import HTTPCore

__all__ = ["Progress", "RunResult", "drive", "outcome", "run_many", "stream_events"]

logger = logging.getLogger("replicate_async")

R = TypeVar("R", Prediction, Training)

#: How long a server-side cancel (or a create's answer we need for it) may take.
CANCEL_GRACE = 10.0
#: Seconds a ``Prefer: wait`` hold ends before ``run(timeout=...)``'s deadline.
WAIT_HEADROOM = 0.5
_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_orphans: set[asyncio.Task[Any]] = set()
#: How many of the latest events a resumed stream is checked against for replays.
REPLAY_WINDOW = 4096


async def drive(
    *,
    create: Callable[[], Awaitable[R]] | None = None,
    current: R | None = None,
    fetch: Callable[[str], Awaitable[R]],
    cancel: Callable[[str], Awaitable[Any]],
    timeout: float | None,
    poll: PollPolicy,
    cancel_on_abandon: bool = True,
    create_grace: float = CANCEL_GRACE,
) -> R:
    """Create (or take ``current``) and poll until terminal, within ``timeout`` seconds.

    ``create_grace`` is how long a cancelled caller still waits for an unanswered create
    (to learn the id and cancel it): at least as long as a ``Prefer: wait`` hold.

    Returns the terminal prediction or training (whatever its status). On the deadline,
    raises :class:`PredictionTimeoutError` after cancelling it on the server; on task
    cancellation, cancels it on the server and re-raises :class:`asyncio.CancelledError`.
    """
    timeout = check.seconds(timeout, "timeout")
    latest: R | None = current
    creating: asyncio.Task[R] | None = None
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            if create is not None:
                # Shielded, so that if we are cancelled mid-create we still learn the id
                # of a prediction the server did create, and can cancel it.
                creating = asyncio.ensure_future(create())
                latest = await asyncio.shield(creating)
            assert latest is not None
            interval = poll.initial
            while not latest.done:
                await asyncio.sleep(interval * random.uniform(1 - poll.jitter, 1 + poll.jitter))
                latest = await fetch(latest.id)
                interval = min(interval * poll.factor, poll.maximum)
            return latest
    except (asyncio.CancelledError, TimeoutError) as exc:
        expired = isinstance(exc, TimeoutError) and scope.expired()
        pending_create = False
        if latest is None and creating is not None:
            # On the deadline, never wait past it for a create that has not answered:
            # it is canceled in the background as soon as it does (and Cancel-After
            # bounds it on the server meanwhile). A cancelled task waits a bounded time.
            latest = await settle(
                creating,
                cancel if cancel_on_abandon else None,
                grace=0.0 if expired else create_grace,
            )
            pending_create = latest is None and not creating.done()
        if latest is not None and not latest.done and cancel_on_abandon:
            latest = await cancel_quietly(cancel, latest)
        if expired:
            what = "training" if isinstance(latest, Training) else "prediction"
            note = ""
            if cancel_on_abandon and latest is not None:
                note = "; it was canceled on the server"
            elif cancel_on_abandon and pending_create:
                note = "; its create request had not returned: it is canceled when it does"
            raise PredictionTimeoutError(
                f"the {what} did not finish within {timeout}s{note}", latest
            ) from None
        raise


async def settle(
    creating: asyncio.Task[R],
    cancel: Callable[[str], Awaitable[Any]] | None,
    *,
    grace: float = CANCEL_GRACE,
) -> R | None:
    """Wait up to ``grace`` seconds for an interrupted create's answer; past that (or if
    cancelled again meanwhile), a late answer is canceled on the server when it lands."""

    def _late(task: asyncio.Task[R]) -> None:
        if task.cancelled() or task.exception() is not None or cancel is None:
            return
        if task.result().done:  # finished meanwhile: nothing left to cancel
            return
        orphan = asyncio.ensure_future(cancel(task.result().id))
        _orphans.add(orphan)
        orphan.add_done_callback(_forget)

    if grace > 0 and not creating.done():
        try:
            await asyncio.wait({creating}, timeout=grace)
        except asyncio.CancelledError:
            creating.add_done_callback(_late)
            raise
    if creating.done():
        if creating.cancelled() or creating.exception() is not None:
            return None
        return creating.result()
    creating.add_done_callback(_late)
    return None


async def settle_background(limit: float = CANCEL_GRACE) -> None:
    """Wait (bounded) for server-side cancels still in flight on this loop."""
    loop = asyncio.get_running_loop()
    pending = {task for task in _orphans if task.get_loop() is loop and not task.done()}
    if pending:
        await asyncio.wait(pending, timeout=limit)


def _forget(task: asyncio.Task[Any]) -> None:
    _orphans.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("cancelling an abandoned prediction failed: %r", task.exception())


async def cancel_quietly(cancel: Callable[[str], Awaitable[R]], run: R) -> R:
    """Cancel on the server, shielded and bounded; never raises (the run is abandoned)."""
    task = asyncio.ensure_future(cancel(run.id))
    try:
        await asyncio.wait({task}, timeout=CANCEL_GRACE)
    except asyncio.CancelledError:  # cancelled again: the cancel request still goes on
        _orphans.add(task)
        task.add_done_callback(_forget)
        raise
    if not task.done():
        _orphans.add(task)
        task.add_done_callback(_forget)
        return run
    if task.cancelled() or task.exception() is not None:
        logger.warning("could not cancel %s on the server: %r", run.id, task.exception())
        return run
    return task.result()


def outcome(run: Prediction | Training) -> Any:
    """The output of a succeeded run, or the matching :class:`PredictionError`."""
    status = run.status
    if status == Status.SUCCEEDED:
        return run.output
    what = "training" if isinstance(run, Training) else "prediction"
    if status == Status.FAILED:
        raise ModelError(f"{what} {run.id} failed: {run.error}", run)
    if status == Status.CANCELED:
        raise PredictionCanceledError(f"{what} {run.id} was canceled", run)
    if status == Status.ABORTED:
        raise PredictionAbortedError(
            f"{what} {run.id} was aborted: its deadline passed before it started", run
        )
    raise PredictionError(f"{what} {run.id} ended with status {status!r}", run)


def creator(
    client: AsyncReplicate,
    ref: str | None,
    *,
    deployment: str | None,
    input: Mapping[str, Any],
    wait: bool | int | None,
    cancel_after: float | timedelta | str | None,
    webhook: str | None,
    webhook_events_filter: Iterable[str] | None,
) -> Callable[[], Awaitable[Prediction]]:
    """Validate a run's target now and return the coroutine function that creates it.

    ``ref`` is ``"owner/name"`` (an official model), ``"owner/name:version"`` or a bare
    64-hex version id; ``deployment="owner/name"`` runs on a deployment instead.
    """
    options: dict[str, Any] = {
        "wait": wait,
        "cancel_after": cancel_after,
        "webhook": webhook,
        "webhook_events_filter": webhook_events_filter,
    }
    if (ref is None) == (deployment is None):
        raise ValueError("pass exactly one of a model ref or deployment=")
    if not isinstance(input, Mapping):
        raise TypeError(f"input must be a mapping, got {type(input).__name__}")

    if deployment is not None:
        split_version_ref(deployment)

        async def on_deployment() -> Prediction:
            return await client.deployments.predictions.create(deployment, input=input, **options)

        return on_deployment
    assert ref is not None
    if isinstance(ref, str) and _VERSION_ID.fullmatch(ref):
        version: str | None = ref
    else:
        _owner, _name, version = split_version_ref(ref)
        version = ref if version is not None else None
    if version is not None:
        pinned = version

        async def on_version() -> Prediction:
            return await client.predictions.create(version=pinned, input=input, **options)

        return on_version

    async def on_model() -> Prediction:
        return await client.models.predictions.create(ref, input=input, **options)

    return on_model


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


# -- streaming --------------------------------------------------------------------------


async def stream_events(
    http: HTTPCore,
    url: str,
    *,
    idle_timeout: float = 60.0,
    max_reconnects: int = 5,
    raise_on_error: bool = True,
) -> AsyncIterator[ServerSentEvent]:
    """Yield the events of a prediction's SSE stream until ``done``.

    A dropped connection is resumed with ``Last-Event-ID`` (at most ``max_reconnects``
    times in a row); an event already seen (same id, type and data) is never yielded
    twice. An ``error`` event raises :class:`StreamError` unless ``raise_on_error=False``.
    """
    decoder = SSEDecoder()
    # An event without an ``id:`` line inherits the previous id (Replicate's ``error``
    # has none), so an event is known by its id, type and data together, not its id alone.
    # Duplicates only come from a replay after a resume, so events are checked only then,
    # against the latest REPLAY_WINDOW ones: no per-event key, memory flat on long streams.
    recent: collections.deque[ServerSentEvent] = collections.deque(maxlen=REPLAY_WINDOW)
    seen: set[tuple[str, str, int]] = set()
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if decoder.last_event_id:
            headers["Last-Event-ID"] = decoder.last_event_id
        try:
            async with http.stream("GET", url, headers=headers, read_timeout=idle_timeout) as resp:
                async for chunk in resp.content.iter_any():
                    for event in decoder.feed(chunk):
                        failures = 0
                        if event.id is not None and event.event != "done":
                            if seen and (event.id, event.event, hash(event.data)) in seen:
                                continue
                            recent.append(event)
                        if event.event == "error" and raise_on_error:
                            raise StreamError(
                                f"the stream reported an error: {event.data}", detail=event.data
                            )
                        yield event
                        if event.event == "done":
                            return
        except APIStatusError:
            raise
        except APIConnectionError as exc:
            failures += 1
            if failures > max_reconnects:
                raise StreamError(f"the stream broke {failures} times in a row; giving up") from exc
            logger.debug("stream dropped (%s); resuming after %s", exc, decoder.last_event_id)
        else:
            failures += 1
            if failures > max_reconnects:
                raise StreamError("the stream ended without a done event")
        decoder.flush()
        seen = {(e.id or "", e.event, hash(e.data)) for e in recent}
        await asyncio.sleep(min(2.0, 0.1 * 2**failures))


# -- fan-out ----------------------------------------------------------------------------


@attrs.frozen
class RunResult:
    """One input's outcome in :meth:`AsyncReplicate.run_many`.

    Exactly one of ``output`` (when ``ok``) and ``error`` is meaningful. ``prediction`` is
    the last state seen (``None`` if the create itself failed).
    """

    index: int
    input: Mapping[str, Any]
    prediction: Prediction | None
    output: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the prediction succeeded."""
        return self.error is None


@attrs.define
class Progress:
    """Counts for a progress bar, updated as results complete."""

    total: int | None
    started: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0


async def run_many(
    run_one: Callable[[Mapping[str, Any]], Awaitable[tuple[Prediction | None, Any]]],
    inputs: Iterable[Mapping[str, Any]],
    *,
    concurrency: int,
    on_progress: Callable[[Progress], Any] | None = None,
) -> AsyncIterator[RunResult]:
    """Run ``run_one`` over ``inputs`` with at most ``concurrency`` in flight.

    Yields results as they complete. Inputs are pulled lazily, so a generator of a
    million inputs is fine. Leaving the loop early cancels what is still running (and so
    cancels those predictions on the server).
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    total = len(inputs) if isinstance(inputs, Sized) else None
    progress = Progress(total=total)
    source = enumerate(inputs)
    results: asyncio.Queue[RunResult | None] = asyncio.Queue()

    async def worker() -> None:
        for index, item in source:
            progress.started += 1
            try:
                prediction, output = await run_one(item)
                result = RunResult(index, item, prediction, output)
            except Exception as exc:  # one failure never loses the others
                seen = exc.prediction if isinstance(exc, PredictionError) else None
                last = seen if isinstance(seen, Prediction) else None
                result = RunResult(index, item, last, error=exc)
            await results.put(result)
        await results.put(None)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    running = len(workers)
    try:
        while running:
            result = await results.get()
            if result is None:
                running -= 1
                continue
            progress.completed += 1
            if result.ok:
                progress.succeeded += 1
            else:
                progress.failed += 1
            if on_progress is not None:
                on_progress(progress)
            yield result
        for task in workers:
            task.result()  # surface a bug in a worker instead of hiding it
    finally:
        for task in workers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*workers, return_exceptions=True)


def output_of(http: HTTPCore, prediction: Prediction, use_file_output: bool) -> Any:
    """A succeeded prediction's output, with URLs wrapped as files when asked."""
    output = outcome(prediction)
    return wrap_output(output, http) if use_file_output else output
