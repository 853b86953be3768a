"""Retry decisions: what is safe to send again, how long to wait, and when to stop.

:class:`RetryPlan` is the one retry construct: tenacity's loop, with the decisions below
as its callbacks. The request path (:meth:`HTTPCore.request`) sends the first attempt on
its own (no allocation when it succeeds) and hands a failure to a plan.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import attrs
from tenacity import AsyncRetrying, AttemptManager, RetryCallState, retry_if_exception

from ._clock import Clock
from ._config import RetryPolicy
from ._throttle import RateLimiter, RequestKind
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    PoolTimeoutError,
    RateLimitError,
    RequestMayHaveSucceededError,
)

__all__ = ["RetryPlan", "is_retryable", "may_retry", "parse_retry_after", "retry_delay"]

#: Statuses worth another try for a request that cannot create anything twice.
_RETRY_STATUSES = frozenset({408, 425, 500, 502, 503, 504})


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether sending the same request again is both useful and safe.

    - 429 is always safe: a throttled request was not processed.
    - A connection that failed before the request was written (``connect_failed``) is safe.
    - Other connection failures, timeouts, 5xx and 408 are retried only when ``idempotent``,
      because a create that timed out or got a 502 may have created a billed prediction.
    """
    if isinstance(exc, RateLimitError):
        return True
    if isinstance(exc, RequestMayHaveSucceededError | PoolTimeoutError):
        return False  # a pool timeout already waited its patience out: queueing again won't help
    if isinstance(exc, APIConnectionError):
        return idempotent or getattr(exc, "connect_failed", False)
    if isinstance(exc, APIStatusError):
        return idempotent and exc.status in _RETRY_STATUSES
    return False


def parse_retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Seconds to wait as asked by ``Retry-After`` (seconds or HTTP-date) or ``retry_after``.

    ``retry-after-ms`` wins when present. Returns ``None`` when nothing usable was given:
    only plain ASCII numbers (``120``, ``1.5``) and short HTTP-dates are read, so a hint
    like ``²``, ``1_0``, ``nan`` or five thousand digits is ignored, never an error; dates
    in the past mean "now" (0).
    """
    ms = _seconds(headers.get("retry-after-ms") or headers.get("Retry-After-Ms"))
    if ms is not None:
        return ms / 1000
    header = headers.get("retry-after") or headers.get("Retry-After")
    if header is not None:
        header = header.strip()
        seconds = _seconds(header)
        if seconds is None and 0 < len(header) <= _MAX_DATE_LENGTH and header.isascii():
            seconds = _http_date_delay(header)
        if seconds is not None:
            return seconds
    if isinstance(body, Mapping):
        field = body.get("retry_after")
        if isinstance(field, int | float) and not isinstance(field, bool) and 0 <= field < 1e9:
            return float(field)
    return None


#: ``Retry-After`` as a number: ASCII digits, an optional fraction (at most 12 + 6 digits).
_NUMBER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?", re.ASCII).fullmatch
#: The longest HTTP-date read (``Sun, 06 Nov 1994 08:49:37 GMT`` is 29 characters).
_MAX_DATE_LENGTH = 64


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    return float(value) if _NUMBER(value) else None


def _http_date_delay(value: str) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def may_retry(exc: BaseException, idempotent: bool, policy: RetryPolicy) -> bool:
    """Whether the failure ``exc`` may be retried at all under ``policy``.

    :func:`is_retryable`, unless retries are disabled (``max_retries=0``) or a 429 asks for
    a longer wait than ``max_retry_after`` (then it is the caller's decision).
    """
    if policy.max_retries == 0 or not is_retryable(exc, idempotent=idempotent):
        return False
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return exc.retry_after <= policy.max_retry_after
    return True


def retry_delay(exc: BaseException, retry_number: int, policy: RetryPolicy) -> float:
    """How long to sleep before retry number ``retry_number`` (1-based) of a failure.

    - A 429's ``Retry-After`` ``R`` plus a random ``[0, min(1, R / 10)]`` s, so a throttled
      crowd does not re-fire on one tick, never above ``policy.max_retry_after``. The retry
      then still queues behind the rate limiter.
    - A 503's ``Retry-After``, capped the same way.
    - Otherwise a time drawn uniformly from ``[backoff_initial / 2, min(backoff_max,
      backoff_initial * 2 ** (retry_number - 1))]``: exponential backoff, jittered.
    """
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        asked = min(exc.retry_after, policy.max_retry_after)
        return min(policy.max_retry_after, asked + random.uniform(0.0, min(1.0, asked / 10)))
    if isinstance(exc, APIStatusError) and exc.status == 503:
        given = parse_retry_after(exc.headers)
        if given is not None:
            return min(given, policy.max_retry_after)
    ceiling = min(policy.backoff_max, policy.backoff_initial * 2 ** (retry_number - 1))
    return random.uniform(policy.backoff_initial / 2, ceiling)


@attrs.define
class RetryPlan:
    """One retrying request's decisions, as the callbacks of a tenacity loop.

    - A 429 is retried until ``end`` (the clock's ``monotonic()`` time): after its
      jittered ``Retry-After`` (:func:`retry_delay`) the resend queues in the ``limiter``
      like a first attempt, so it is paced with everything else. A retry whose waiting
      would end past ``end`` is not made (the limiter's share counted when it can say).
    - Any other retryable failure at most ``policy.max_retries`` times, after
      :func:`retry_delay`, and never when that wait would end past ``end``.
    """

    policy: RetryPolicy
    clock: Clock
    limiter: RateLimiter
    kind: RequestKind
    idempotent: bool
    #: The latest failure (the first attempt's, to begin with).
    last: BaseException
    end: float
    failures: int = 0
    _first: bool = True

    def attempts(
        self, on_retry: Callable[[BaseException, float, int], Awaitable[None]]
    ) -> AsyncIterator[AttemptManager]:
        """Tenacity's attempts; ``await on_retry(failure, wait, next_attempt)`` runs before
        each wait."""

        async def before_sleep(state: RetryCallState) -> None:
            await on_retry(self.last, state.upcoming_sleep, state.attempt_number + 1)

        return AsyncRetrying(
            retry=retry_if_exception(self._retryable),
            wait=self._wait,
            stop=self._stop,
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        ).__aiter__()

    def check(self) -> None:
        """Raise the first attempt's failure (so tenacity decides on it); later, raise the
        last failure at once when queueing in the limiter would end past ``end`` (when the
        limiter can say how long it would wait). The attempt itself then acquires."""
        if self._first:
            self._first = False
            raise self.last
        delay = getattr(self.limiter, "delay", None)
        if delay is not None and self.clock.monotonic() + delay(self.kind) > self.end:
            raise self.last

    def _retryable(self, exc: BaseException) -> bool:
        self.last = exc
        return may_retry(exc, self.idempotent, self.policy)

    def _wait(self, state: RetryCallState) -> float:
        return retry_delay(self.last, state.attempt_number, self.policy)

    def _stop(self, state: RetryCallState) -> bool:
        past_end = self.clock.monotonic() + state.upcoming_sleep > self.end
        if isinstance(self.last, RateLimitError):
            return past_end
        self.failures += 1
        return past_end or self.failures > self.policy.max_retries
