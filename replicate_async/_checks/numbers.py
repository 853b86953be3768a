"""Checks for numbers and durations, before anything is sent.

- **Durations** (``timeout``, ``idle_timeout``, ``cancel_after``...): finite, positive,
  at most :data:`MAX_DURATION` seconds (24 hours); duration strings use ASCII digits only.
- **Counts**: ints (never ``bool``), at least zero or one as the argument needs.
- **Header values made of them**: ``Prefer: wait`` (1 to 60 seconds) and ``Cancel-After``.

A number in an error message is shown by :func:`number`: never thousands of digits.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from .._config import MAX_DURATION
from ..exceptions import InvalidArgumentError
from .url import shown

__all__ = [
    "MAX_DURATION",
    "cancel_after_header",
    "non_negative_int",
    "number",
    "positive_int",
    "prefer_wait",
    "seconds",
]

# The two forms the API takes: bare seconds, or hours/minutes/seconds with units.
_DURATION = re.compile(
    r"(?P<bare>[0-9]+(?:\.[0-9]+)?)|(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)s)?",
    re.ASCII,
)
_MAX_DURATION_TEXT = 32


def number(value: float | int) -> str:
    """A number for a message: never thousands of digits (nor an OverflowError)."""
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"an integer of {value.bit_length()} bits"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def seconds(value: Any, what: str) -> float | None:
    """An optional positive, finite number of seconds, at most :data:`MAX_DURATION`
    (``None`` means no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    # Compared without converting (float(10**400) would raise OverflowError); NaN and
    # infinities fail the comparison too.
    if not 0 < value <= MAX_DURATION:
        raise InvalidArgumentError(
            f"{what} must be more than 0 and at most {MAX_DURATION} seconds, got {number(value)}"
        )
    return float(value)


def non_negative_int(value: Any, what: str) -> int:
    """A count that may be zero."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r:.80}")
    if value < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {number(value)}")
    return value


def positive_int(value: Any, what: str) -> int:
    """A count of at least one."""
    if non_negative_int(value, what) < 1:
        raise InvalidArgumentError(f"{what} must be at least 1, got {value}")
    return int(value)


def prefer_wait(wait: bool | int | None) -> tuple[str | None, float | None]:
    """The ``Prefer`` header value and the seconds the server may hold the request.

    ``True`` waits the server's maximum (60 s), an int 1-60 that many seconds;
    ``None``/``False`` does not wait.
    """
    if wait is None or wait is False:
        return None, None
    if wait is True:
        return "wait", 60.0
    if not isinstance(wait, int):
        raise TypeError(f"wait must be True, False, None or an int of seconds, got {wait!r:.80}")
    if not 1 <= wait <= 60:
        raise InvalidArgumentError(f"wait must be between 1 and 60 seconds, got {number(wait)}")
    return f"wait={wait}", float(wait)


def _duration_text(value: str) -> float:
    match = _DURATION.fullmatch(value) if len(value) <= _MAX_DURATION_TEXT else None
    if not value or match is None:
        raise InvalidArgumentError(
            f"cancel_after must look like '30', '30s', '5m' or '1h30m' (ASCII digits), "
            f"got {shown(value)}"
        )
    if match.group("bare") is not None:
        return float(match.group("bare"))
    hours, minutes, secs = match.group("h", "m", "s")
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)


def cancel_after_header(value: float | timedelta | str | None) -> str | None:
    """The ``Cancel-After`` header value: 5 seconds to :data:`MAX_DURATION`."""
    if value is None:
        return None
    if isinstance(value, str):
        total = _duration_text(value)
        if not 5 <= total <= MAX_DURATION:
            raise InvalidArgumentError(
                f"cancel_after must be 5 to {MAX_DURATION} seconds, got {shown(value)}"
            )
        return value
    if isinstance(value, timedelta):
        secs: Any = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"cancel_after must be seconds, a timedelta or a string, got {value!r:.80}")
    else:
        secs = value
    if not 5 <= secs <= MAX_DURATION:  # NaN and infinities fail the comparison too
        raise InvalidArgumentError(
            f"cancel_after must be 5 to {MAX_DURATION} seconds, got {number(secs)}"
        )
    return f"{math.ceil(secs)}s"
