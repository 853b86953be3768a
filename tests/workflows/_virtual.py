"""A fake and a client sharing one virtual clock, and ways to bring a run to a phase."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from replicate_async import AsyncReplicate, PollPolicy
from replicate_async._workflows.runner import RUN_HOLD
from replicate_async.testing import FakeReplicate, ManualClock

#: Fast, jitter-free polling (virtual seconds).
POLL = PollPolicy(initial=0.5, factor=1.0, maximum=0.5, jitter=0.0)
PHASES = ("hold", "polling", "streaming")
PROMPT = " ".join(f"w{i}" for i in range(40))
_SEEDED: weakref.WeakKeyDictionary[FakeReplicate, frozenset[str]] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def virtual_fake() -> AsyncIterator[tuple[FakeReplicate, ManualClock]]:
    """A fake whose runs, holds and streams all move on one :class:`ManualClock`."""
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake:
        fake.set_model_behaviour("fake/slow", duration=600)
        fake.set_model_behaviour("fake/tokens", duration=600)
        _SEEDED[fake] = frozenset(fake.predictions)
        yield fake, clock


def virtual_client(fake: FakeReplicate, clock: ManualClock) -> AsyncReplicate:
    """A client on the same virtual clock (polls, deadlines, cancel bounds)."""
    return fake.client(clock=clock, poll=POLL)


def workload(client: AsyncReplicate, phase: str) -> Callable[[], Awaitable[Any]]:
    """What an app does in ``phase``: a held run, a polled run, or a consumed stream."""

    async def held() -> Any:
        return await client.run("fake/slow", input={})  # the default hold: RUN_HOLD s

    async def polled() -> Any:
        return await client.run("fake/slow", input={}, wait=False)

    async def streamed() -> list[str]:
        seen = []
        async with client.stream("fake/tokens", input={"prompt": PROMPT}) as events:
            async for event in events:
                seen.append(event.event)
        return seen

    return {"hold": held, "polling": polled, "streaming": streamed}[phase]


def _reached(fake: FakeReplicate, phase: str) -> bool:
    if phase == "hold":
        return bool(fake.requests_matching("POST", "/v1/models/fake/slow/predictions"))
    if phase == "polling":
        return fake.count("GET", "/v1/predictions/*") >= 2
    return bool(fake.requests_matching("GET", "/v1/streams/*"))


async def reach(fake: FakeReplicate, clock: ManualClock, phase: str) -> str:
    """Move virtual time until the run is in ``phase``; return the prediction's id."""
    for _ in range(400):
        if _reached(fake, phase) and (pid := newest(fake)) is not None:
            for _ in range(20):  # let the request in flight settle into its wait
                await asyncio.sleep(0)
            return pid
        if phase == "polling":
            await clock.advance_async(0.25)
        else:
            await asyncio.sleep(0.005)
    raise AssertionError(f"never reached {phase}")


def newest(fake: FakeReplicate) -> str | None:
    """The id of the newest prediction the test created (not one of the seeded ones)."""
    made = [p for key, p in fake.predictions.items() if key not in _SEEDED[fake]]
    return max(made, key=lambda p: p.created_ns).id if made else None


async def settle(fake: FakeReplicate, clock: ManualClock, phase: str) -> None:
    """Let the hold answer (a held create's id only comes with its answer)."""
    if phase == "hold":
        await clock.advance_async(RUN_HOLD)


def cancels(fake: FakeReplicate, pid: str) -> int:
    """``POST /predictions/{pid}/cancel`` requests the fake received."""
    return fake.count("POST", f"/v1/predictions/{pid}/cancel")


def status(fake: FakeReplicate, pid: str) -> str:
    """The prediction's status on the server."""
    found = fake.prediction(pid)
    assert found is not None
    return str(found["status"])


async def tick(clock: ManualClock) -> None:
    """Let virtual time run (one second per real step) until cancelled."""
    for _ in range(10_000):
        await clock.advance_async(1)
        await asyncio.sleep(0.001)


def made(fake: FakeReplicate) -> list[Any]:
    """The predictions the test created (not the seeded ones)."""
    return [p for key, p in fake.predictions.items() if key not in _SEEDED[fake]]
