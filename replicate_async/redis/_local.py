"""The in-process limiter used while Redis is unreachable (and the GCRA both share)."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Literal, Protocol

from .._clock import SYSTEM_CLOCK, Clock

__all__ = ["Gcra", "Limiter", "LocalRateLimiter", "RequestKind", "local_fallback"]

RequestKind = Literal["create", "other"]


class Limiter(Protocol):
    """The client's rate-limiter protocol (``replicate_async._throttle.RateLimiter``)."""

    async def acquire(self, kind: RequestKind) -> None:
        """Wait until a request of this kind may go."""

    async def on_rate_limited(self, kind: RequestKind, retry_after: float | None) -> None:
        """A 429 was seen."""

    async def aclose(self) -> None:
        """Release what the limiter holds."""


class Gcra:
    """The generic cell rate algorithm, as a queue: each call reserves the next slot.

    ``interval`` seconds between requests on average, ``burst`` requests allowed at once.
    :meth:`reserve` returns how long the caller must wait before its request may go (the
    same arithmetic the Redis script runs, on one process's clock).
    """

    __slots__ = ("hold_until", "interval", "tat", "tau")

    def __init__(self, per_minute: float, burst: int) -> None:
        self.interval = 60.0 / per_minute
        self.tau = (burst - 1) * self.interval
        self.tat = 0.0
        self.hold_until = 0.0

    def reserve(self, now: float) -> float:
        """Reserve the next slot at time ``now``; the seconds to wait for it."""
        start = max(now, self.hold_until)
        allowed = max(start, self.tat - self.tau)
        self.tat = max(self.tat, start) + self.interval
        return allowed - now

    def hold(self, now: float, seconds: float) -> None:
        """Nothing goes for ``seconds``; then the pace resumes with no burst."""
        self.hold_until = max(self.hold_until, now + seconds)
        self.tat = max(self.tat, self.hold_until + self.tau)


class LocalRateLimiter:
    """A :class:`~replicate_async._throttle.RateLimiter` for one process: a GCRA per kind.

    ``create_per_minute`` / ``other_per_minute`` requests a minute, ``burst`` at once
    (default: a second's worth). A 429 holds that kind for its ``Retry-After`` (default
    ``default_hold`` seconds), then the pace resumes without a burst.
    """

    def __init__(
        self,
        create_per_minute: float = 600,
        other_per_minute: float = 3000,
        *,
        create_burst: int | None = None,
        other_burst: int | None = None,
        default_hold: float = 1.0,
        max_hold: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._default_hold = default_hold
        self._max_hold = max_hold
        self._gcra: dict[str, Gcra] = {
            "create": Gcra(create_per_minute, default_burst(create_per_minute, create_burst)),
            "other": Gcra(other_per_minute, default_burst(other_per_minute, other_burst)),
        }

    async def acquire(self, kind: RequestKind) -> None:
        """Wait until a request of this kind may go."""
        wait = self._gcra[kind].reserve(self._clock.monotonic())
        if wait > 0:
            await self._clock.sleep(wait)

    async def on_rate_limited(self, kind: RequestKind, retry_after: float | None) -> None:
        """A 429 was seen: hold this kind for ``retry_after`` seconds."""
        seconds = self._default_hold if retry_after is None else retry_after
        self._gcra[kind].hold(self._clock.monotonic(), min(max(seconds, 0.0), self._max_hold))

    async def aclose(self) -> None:
        """Nothing to release."""


def default_burst(per_minute: float, burst: int | None) -> int:
    """``burst``, or a second's worth of requests (at least 1)."""
    if burst is not None:
        if burst < 1:
            raise ValueError("a burst must be at least 1")
        return burst
    return max(1, int(per_minute // 60))


def local_fallback(create_per_minute: float, other_per_minute: float, clock: Clock) -> Limiter:
    """The client's own in-process ``Throttle`` when it takes these rates, else a
    :class:`LocalRateLimiter`."""
    throttle: Any = None
    with contextlib.suppress(ImportError, AttributeError):
        throttle = importlib.import_module("replicate_async._throttle").Throttle
    if throttle is not None:
        try:
            made: Limiter = throttle(
                create_per_minute=create_per_minute,
                other_per_minute=other_per_minute,
                clock=clock,
            )
            return made
        except TypeError:
            pass
    return LocalRateLimiter(create_per_minute, other_per_minute, clock=clock)
