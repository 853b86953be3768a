"""A fault schedule for the money-path property test: runs, faults, cancels and a close.

A :class:`Plan` is what hypothesis draws; :func:`play` plays it against the embedded fake
over real sockets, on one virtual clock that jumps to its next sleeper whenever the loop
has gone quiet (so model runs, holds, polls, back-offs and deadlines take no real time,
while real I/O, real socket timeouts included, runs at its own pace). What each run
ended with, and the fake's request log, are what the invariants are checked against.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from replicate_async import (
    AsyncReplicate,
    Hooks,
    PollPolicy,
    Prediction,
    RetryEvent,
    RetryPolicy,
    Timeouts,
)
from replicate_async.testing import FakeReplicate, ManualClock

#: Where faults go: (method, path glob) of creates, polls, streams, downloads and cancels.
TARGETS: dict[str, tuple[str, str]] = {
    "create": ("POST", "/v1/models/*/predictions"),
    "poll": ("GET", "/v1/predictions/*"),
    "stream": ("GET", "/v1/streams/*"),
    "download": ("GET", "/delivery/*"),
    "cancel": ("POST", "/v1/predictions/*/cancel"),
}
#: Faults, as ``fake.faults.add`` arguments (``slow``: a body slower than the read timeout).
KINDS: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "503": {"status": 503},
    "html-502": {"html_error": True},
    "reset": {"drop_connection": "before_body"},
    "lost": {"drop_connection": "after_body"},
    "slow": {"slow_body": 0.4},
    "429": {"status": 429, "retry_after": 1},
    "hint-superscript": {"headers": {"ratelimit-remaining": "\u00b2"}},
    "hint-huge": {"headers": {"ratelimit-remaining": "9" * 5000}},
    "hint-junk": {"headers": {"ratelimit-remaining": "-1", "ratelimit-reset": "soon"}},
}
#: Faults after which the server did the work but the client never had the answer.
ANSWER_LOST = ("lost", "slow")
WORKFLOWS = ("polled", "held", "predictions.run", "stream", "outputs", "run_many", "use", "file")

READ_TIMEOUT = 0.25
POLL = PollPolicy(initial=0.5, factor=1.5, maximum=2.0, jitter=0.0)
RETRY = RetryPolicy(max_retries=3, backoff_initial=0.1, backoff_max=0.4, max_retry_after=5)


@dataclass(frozen=True)
class Run:
    """One run-starting call, and when (virtual seconds after the start) its task is
    cancelled, if ever."""

    workflow: str
    duration: float
    timeout: float | None
    cancel_at: float | None
    leave_after: int | None = None  # streams: ``break`` after this many items
    then_close: bool = False  # ...and then ``aclose()`` the client at once


@dataclass(frozen=True)
class Plan:
    """A schedule: the runs, the faults (target, kind, times) and when ``aclose()`` comes."""

    runs: tuple[Run, ...]
    faults: tuple[tuple[str, str, int], ...]
    close_at: float | None


@dataclass
class Outcome:
    """How one run ended: ``returned``, or the exception; the predictions it was handed."""

    tag: str
    returned: bool = False
    left: bool = False  # a stream left early by ``break``
    whole: bool = False  # run_many: the fan-out itself failed, not one of its runs
    error: BaseException | None = None
    created: list[Prediction] = field(default_factory=list)


class Wire:
    """Counts the client's requests waiting for their response headers (a held create,
    which the fake answers on the virtual clock, does not count)."""

    def __init__(self) -> None:
        self.busy = 0

    def trace(self) -> aiohttp.TraceConfig:
        """The aiohttp trace that keeps :attr:`busy`."""
        trace = aiohttp.TraceConfig()

        async def start(_: object, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
            ctx.counted = "Prefer" not in params.headers
            self.busy += ctx.counted

        async def end(_: object, ctx: Any, __: object) -> None:
            self.busy -= getattr(ctx, "counted", False)
            ctx.counted = False

        trace.on_request_start.append(start)
        trace.on_request_end.append(end)
        trace.on_request_exception.append(end)
        return trace


class Ticker:
    """Moves the clock to its next sleeper once the loop has been quiet for a while: no
    request waiting for its answer or still reading it, nothing new on the fake or clock."""

    def __init__(
        self, clock: ManualClock, fake: FakeReplicate, wire: Wire, client: AsyncReplicate
    ) -> None:
        self.clock = clock
        self.fake = fake
        self.wire = wire
        # A quick call (poll, cancel, a create without a hold) keeps its connection slot
        # until its body is read: a slow body is real I/O, no virtual time may pass in it.
        self.pool = client._http._pool
        self._task: asyncio.Task[None] | None = None

    def busy(self) -> bool:
        """Whether real I/O is under way."""
        return bool(self.wire.busy) or self.pool.slots.locked()

    def _fingerprint(self) -> tuple[int, ...]:
        return (self.fake.count(), self.clock.pending_sleepers, len(self.clock.slept))

    async def _run(self) -> None:
        seen, quiet = self._fingerprint(), 0
        for _ in range(200_000):
            await asyncio.sleep(0.001)
            now = self._fingerprint()
            quiet = quiet + 1 if now == seen and not self.busy() else 0
            seen = now
            if quiet < 3:
                continue
            due = min((e[0] for e in self.clock._heap if not e[2].done()), default=None)
            if due is not None:
                self.clock.advance(max(0.0, due - self.clock.monotonic()))
                quiet = 0

    def __enter__(self) -> Ticker:
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _models(fake: FakeReplicate, plan: Plan) -> None:
    for model in ("fake/slow", "fake/tokens", "fake/image"):
        fake.set_model_behaviour(model, duration=max(r.duration for r in plan.runs))


def _call(client: AsyncReplicate, run: Run, out: Outcome) -> Callable[[], Any]:
    """The coroutine function playing ``run``; the fake sees ``out.tag`` in its input."""
    seen = out.created.append
    tag, timeout, far = out.tag, run.timeout, 3600  # no server-side Cancel-After to hide behind

    async def stream(outputs: bool) -> None:
        opened = (client.stream_output if outputs else client.stream)(
            "fake/tokens", input={"prompt": f"{tag} a b c d e f"}, timeout=timeout,
            on_created=seen, idle_timeout=5,
        )  # fmt: skip
        count = 0
        async for _ in opened:
            count += 1
            if run.leave_after is not None and count >= run.leave_after:
                out.left = True
                break
        if out.left and run.then_close:
            del opened  # break, drop the stream, close the client: as the user did
            await client.aclose()

    async def many() -> None:
        results = client.run_many(
            "fake/slow", [{"tag": tag}], timeout=timeout, wait=False, on_created=seen
        )
        failed: BaseException | None = None
        try:
            async with results:
                async for result in results:
                    failed = result.error
        except BaseException:
            out.whole = True  # the fan-out itself was left: its runs are named by on_created
            raise
        if failed is not None:
            raise failed

    async def file() -> None:
        made = await client.run(
            "fake/image", input={"prompt": tag}, wait=False, timeout=timeout,
            cancel_after=far, use_file_output=True, on_created=seen,
        )  # fmt: skip
        out.returned = True  # the run is over; its download is not part of it
        with contextlib.suppress(Exception):
            await made[0].read()

    options: dict[str, Any] = {"timeout": timeout, "cancel_after": far, "on_created": seen}
    calls: dict[str, Callable[[], Any]] = {
        "polled": lambda: client.run("fake/slow", input={"tag": tag}, wait=False, **options),
        "held": lambda: client.run("fake/slow", input={"tag": tag}, wait=2, **options),
        "predictions.run": lambda: client.predictions.run(
            "fake/slow", input={"tag": tag}, wait=False, **options
        ),
        "stream": lambda: stream(False),
        "outputs": lambda: stream(True),
        "run_many": many,
        "use": lambda: client.use("fake/slow", check_input=False, wait=False, **options)(tag=tag),
        "file": file,
    }
    return calls[run.workflow]


async def _play_run(call: Callable[[], Any], out: Outcome) -> None:
    try:
        await call()
        out.returned = True
    except BaseException as exc:  # recorded, judged by the invariants
        if not out.returned:
            out.error = exc
        if isinstance(exc, asyncio.CancelledError):
            raise


async def _after(clock: ManualClock, seconds: float, then: Callable[[], Any]) -> None:
    await clock.sleep(seconds)
    result = then()
    if asyncio.iscoroutine(result):
        await result


@contextlib.asynccontextmanager
async def _world() -> AsyncIterator[tuple[FakeReplicate, ManualClock]]:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake:
        yield fake, clock


@dataclass
class Played:
    """What a plan left: the fake (closed; its log and state kept), how each run ended, and
    the URLs of the requests the client resent."""

    fake: FakeReplicate
    outcomes: list[Outcome]
    retried: list[str]

    def resends(self, path: str) -> int:
        """How many times the client resent a request for ``path``."""
        return sum(1 for url in self.retried if url.endswith(path))


async def play(plan: Plan) -> Played:
    """Play ``plan`` (see :class:`Played`)."""
    async with _world() as (fake, clock):
        _models(fake, plan)
        for target, kind, times in plan.faults:
            method, path = TARGETS[target]
            fake.faults.add(path, method=method, times=times, **KINDS[kind])
        wire = Wire()
        session = aiohttp.ClientSession(trace_configs=[wire.trace()])
        retried: list[str] = []

        def resent(event: RetryEvent) -> None:
            retried.append(event.url)

        client = fake.client(
            clock=clock, poll=POLL, retry=RETRY, max_connections=1, session=session,
            timeout=Timeouts(connect=2, read=READ_TIMEOUT, total=10),
            hooks=Hooks(on_retry=resent),
        )  # fmt: skip
        outcomes = [Outcome(f"run{i}") for i in range(len(plan.runs))]
        with Ticker(clock, fake, wire, client) as ticker:
            tasks = [
                asyncio.ensure_future(_play_run(_call(client, run, out), out))
                for run, out in zip(plan.runs, outcomes, strict=True)
            ]
            timers = [
                asyncio.ensure_future(_after(clock, run.cancel_at, task.cancel))
                for run, task in zip(plan.runs, tasks, strict=True)
                if run.cancel_at is not None
            ]
            if plan.close_at is not None:
                timers.append(asyncio.ensure_future(_after(clock, plan.close_at, client.aclose)))
            try:
                _, pending = await asyncio.wait(tasks, timeout=30)
                assert not pending, f"{len(pending)} run(s) hung"
                for timer in timers:
                    timer.cancel()
                await asyncio.gather(*timers, return_exceptions=True)
                await asyncio.wait_for(client.aclose(), 30)
                for _ in range(2000):  # what no run awaits (a shared schema fetch) ends too
                    if not ticker.busy():
                        break
                    await asyncio.sleep(0.001)
            finally:
                await session.close()
        return Played(fake, outcomes, retried)
