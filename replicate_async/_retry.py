"""Retry decisions: what is safe to send again, and how long to wait first.

The waiting itself is tenacity's (see :meth:`HTTPCore.request`); this module only decides.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from ._config import RetryPolicy
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    RateLimitError,
    RequestMayHaveSucceededError,
)

__all__ = ["is_retryable", "parse_retry_after", "retry_delay"]

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
    if isinstance(exc, RequestMayHaveSucceededError):
        return False
    if isinstance(exc, APIConnectionError):
        return idempotent or getattr(exc, "connect_failed", False)
    if isinstance(exc, APIStatusError):
        return idempotent and exc.status in _RETRY_STATUSES
    return False


def parse_retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Seconds to wait as asked by ``Retry-After`` (seconds or HTTP-date) or ``retry_after``.

    ``retry-after-ms`` wins when present. Returns ``None`` when nothing usable was given;
    negative or unparsable values are ignored, dates in the past mean "now" (0).
    """
    ms = headers.get("retry-after-ms") or headers.get("Retry-After-Ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = -1.0
        if 0 <= value < float("inf"):
            return value
    header = headers.get("retry-after") or headers.get("Retry-After")
    if header is not None:
        header = header.strip()
        try:
            value = float(header)
        except ValueError:
            seconds = _http_date_delay(header)
            if seconds is not None:
                return seconds
        else:
            if 0 <= value < float("inf"):
                return value
    if isinstance(body, Mapping):
        field = body.get("retry_after")
        if isinstance(field, int | float) and not isinstance(field, bool) and 0 <= field < 1e9:
            return float(field)
    return None


def _http_date_delay(value: str) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_delay(exc: BaseException, retry_number: int, policy: RetryPolicy) -> float:
    """How long to sleep before retry number ``retry_number`` (1-based).

    A server-given ``Retry-After`` wins (capped at ``policy.max_retry_after``); otherwise
    exponential backoff with full jitter between ``backoff_initial`` and ``backoff_max``.
    """
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return min(exc.retry_after, policy.max_retry_after)
    if isinstance(exc, APIStatusError) and exc.status == 503:
        asked = parse_retry_after(exc.headers)
        if asked is not None:
            return min(asked, policy.max_retry_after)
    ceiling = min(policy.backoff_max, policy.backoff_initial * 2 ** (retry_number - 1))
    return random.uniform(policy.backoff_initial / 2, ceiling)
