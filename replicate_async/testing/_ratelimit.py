"""Token-bucket rate limits like the real API's (600 creates/min, 3000 others/min)."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """A bucket refilled continuously at ``per_minute`` tokens a minute.

    It holds at most ``burst`` tokens (``None``: a full minute's worth, ``per_minute``)
    and starts full. Time comes from ``clock`` (the fake's injected clock), so a
    :class:`ManualClock` drives refills.
    """

    __slots__ = ("capacity", "clock", "last", "rate", "tokens")

    def __init__(
        self, per_minute: int, clock: Callable[[], float], burst: int | None = None
    ) -> None:
        if burst is not None and burst < 1:
            raise ValueError("a rate-limit burst must be at least 1")
        self.capacity = float(per_minute if burst is None else burst)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock()

    def take(self) -> tuple[bool, int, int]:
        """Take one token: ``(allowed, remaining, retry_after_seconds)``."""
        now = self.clock()
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True, int(self.tokens), 0
        wait = (1.0 - self.tokens) / self.rate if self.rate > 0 else 60.0
        return False, 0, max(1, math.ceil(wait - 1e-9))
