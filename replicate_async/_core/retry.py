"""Retry decisions: what is safe to send again, how long to wait, and when to stop.

:func:`retrying` is the one retry loop: tenacity's, with the decisions below as its
callbacks. The request path (:meth:`HTTPCore.request`) sends the first attempt on its own
(no allocation when it succeeds) and hands a failure to that loop.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from .._clock import Clock
from .._config import RetryPolicy
from ..exceptions import (
    APIConnectionError,
    APIStatusError,
    PoolTimeoutError,
    RateLimitError,
    RequestMayHaveSucceededError,
)

__all__ = [
    "failure_of",
    "is_retryable",
    "may_retry",
    "parse_retry_after",
    "retry_delay",
    "retrying",
]

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


def retrying(
    policy: RetryPolicy,
    clock: Clock,
    *,
    idempotent: bool,
    end: float,
    before_sleep: Callable[[RetryCallState], Awaitable[None]],
) -> AsyncRetrying:
    """tenacity's loop for one request, built from ``policy``.

    - Retries what :func:`may_retry` allows, after :func:`retry_delay`, sleeping on ``clock``.
    - Stops when that wait would end past ``end`` (the clock's ``monotonic()`` time: the
      request's budget, counted from its first attempt). A 429 is retried until then (its
      resend queues in the rate limiter like a first attempt); any other failure at most
      ``policy.max_retries`` times.

    ``before_sleep`` runs before each wait (statistics, the log line, the ``on_retry`` hook).
    """
    retried = 0  # failures other than 429 retried so far

    def stop(state: RetryCallState) -> bool:
        nonlocal retried
        if clock.monotonic() + state.upcoming_sleep > end:
            return True
        if isinstance(failure_of(state), RateLimitError):
            return False
        retried += 1
        return retried > policy.max_retries

    return AsyncRetrying(
        retry=retry_if_exception(lambda exc: may_retry(exc, idempotent, policy)),
        wait=lambda state: retry_delay(failure_of(state), state.attempt_number, policy),
        stop=stop,
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def failure_of(state: RetryCallState) -> BaseException:
    """The failure tenacity is deciding on (its callbacks run only after one)."""
    failure = state.outcome.exception() if state.outcome is not None else None
    assert failure is not None, "tenacity decides only after a failed attempt"
    return failure
