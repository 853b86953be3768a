"""Fan-out: one model over many inputs, a bounded window at a time, results as they come."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sized
from typing import Any

import attrs

from ..exceptions import InvalidArgumentError, ReplicateError
from ..models import Prediction

__all__ = ["Progress", "RunResult", "run_many"]


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

    def count(self, result: RunResult) -> None:
        """Count one completed result."""
        self.completed += 1
        if result.ok:
            self.succeeded += 1
        else:
            self.failed += 1


RunOne = Callable[[Mapping[str, Any]], Awaitable[Prediction]]
#: A finished run's output (raising, for a run that did not succeed).
Output = Callable[[Prediction], Any]


async def run_many(
    run_one: RunOne,
    output: Output,
    inputs: Iterable[Mapping[str, Any]],
    *,
    concurrency: int,
    on_progress: Callable[[Progress], Any] | None = None,
) -> AsyncGenerator[RunResult, None]:
    """Run ``run_one`` over ``inputs``, yielding results (``output`` of each prediction)
    as they complete.

    A bounded window: never more than ``concurrency`` runs started beyond the results the
    consumer has taken, so a consumer that stops early leaves little paid work behind.
    Inputs are pulled lazily (a generator of a million inputs is fine); an error raised by
    the inputs iterator is raised here at once. Leaving the loop (``break``, an exception,
    a cancelled task) cancels the runs still in flight, on the server too.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be a positive int, got {concurrency!r}")
    progress = Progress(total=len(inputs) if isinstance(inputs, Sized) else None)
    source = iter(enumerate(inputs))
    running: set[asyncio.Task[RunResult]] = set()
    # Finished runs queue here as they end (one callback per run), and the loop below
    # sleeps on one future: ``asyncio.wait`` over the whole window would add and remove a
    # callback on every run in flight at each wake-up (O(concurrency) per result).
    finished: collections.deque[asyncio.Task[RunResult]] = collections.deque()
    wake: list[asyncio.Future[None]] = []

    def ended(task: asyncio.Task[RunResult]) -> None:
        finished.append(task)
        if wake and not wake[0].done():
            wake[0].set_result(None)

    taken = 0
    exhausted = False
    try:
        while True:
            while not exhausted and progress.started - taken < concurrency:
                pulled = next(source, None)
                if pulled is None:
                    exhausted = True
                    break
                progress.started += 1
                task = asyncio.ensure_future(_one(run_one, output, *pulled))
                task.add_done_callback(ended)
                running.add(task)
            if not running:
                return
            if not finished:
                wake.append(asyncio.get_running_loop().create_future())
                try:
                    await wake[0]
                finally:
                    wake.clear()
            done = list(finished)
            finished.clear()
            for task in sorted(done, key=lambda t: t.result().index):
                running.discard(task)
                result = task.result()
                progress.count(result)
                if on_progress is not None:
                    on_progress(progress)
                taken += 1
                yield result
    finally:
        for task in running:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*running, return_exceptions=True)


async def _one(run_one: RunOne, output: Output, index: int, item: Mapping[str, Any]) -> RunResult:
    try:
        prediction = await run_one(item)
        return RunResult(index, item, prediction, output(prediction))
    except Exception as exc:  # one failure never loses the others
        seen = exc.prediction if isinstance(exc, ReplicateError) else None
        last = seen if isinstance(seen, Prediction) else None
        return RunResult(index, item, last, error=exc)
