"""Schema ``pattern``s matched without ever blocking the event loop.

A model's schema is written by whoever pushed the model, and a ``pattern`` such as
``^(a+)+$`` backtracks exponentially: Python's :mod:`re` would spend minutes on a
30-character input, inside ``use()`` on the event loop, and nothing (not even
``use(timeout=)``) could interrupt it. :mod:`re` holds the GIL for a whole match, so matching
in a worker thread would freeze the loop just the same, and a safe-subset check cannot tell
``(a|aa)+$`` (catastrophic) from ``(ab|cd)+$`` (fine) without being an engine itself.

So patterns run on the ``regex`` package, whose matcher takes a ``timeout=`` it checks as it
backtracks (measured: ``(a|aa)+$`` on ``"a" * 5000 + "!"`` gives up within 1 ms of a 20 ms
timeout). Compiling is bounded too: ``regex`` unrolls counted repeats, so
``((a{1000}){1000}){1000}`` would build a 10⁹-node program (it exhausted memory when tried);
:func:`_expanded_size` measures a pattern's unrolled size and nesting first, with a scan
that is linear in its length, and such a pattern is not enforced. A pattern that cannot be
compiled or checked in time is left to the API, which enforces it anyway: the client's
check is an early courtesy, never the last word.
"""

from __future__ import annotations

import re
import time
from typing import Any

import regex

__all__ = ["PatternBudget"]

#: The longest pattern compiled; longer ones are left to the API.
MAX_PATTERN_LENGTH = 2_000
#: Largest unrolled size (counted repeats multiplied out) and deepest group nesting.
MAX_EXPANDED_SIZE = 20_000
MAX_GROUP_DEPTH = 32
#: Seconds one match may take, and all of one input check's matches together.
MATCH_TIMEOUT = 0.02
CHECK_BUDGET = 0.04

_REPEAT = re.compile(r"\{([0-9]{0,6})(?:,([0-9]{0,6}))?\}")
_CACHE: dict[str, Any] = {}
_CACHE_SIZE = 256


def _expanded_size(pattern: str) -> int | None:
    """The size of ``pattern`` with its counted repeats unrolled, or ``None`` when it is
    past the limits (too large, too deeply nested, or a repeat count of 7+ digits)."""
    stack: list[list[int]] = [[0, 0]]  # per open group: [size so far, size of last atom]
    i, end = 0, len(pattern)
    while i < end:
        char, atom = pattern[i], 1
        if char == "\\":
            i += 2
        elif char == "[":
            close = pattern.find("]", i + 2)
            i = end if close < 0 else close + 1
        elif char == "(":
            stack.append([0, 0])
            if len(stack) > MAX_GROUP_DEPTH:
                return None
            i += 1
            continue
        elif char == ")" and len(stack) > 1:
            atom = max(stack.pop()[0], 1)
            i += 1
        elif char == "{" and (repeat := _REPEAT.match(pattern, i)) is not None:
            low, high = repeat.group(1), repeat.group(2)
            count = int(high or low or "1")  # {m,} unrolls m; {,n} and {m,n} unroll n
            top = stack[-1]
            top[0] += top[1] * (max(count, 1) - 1)
            top[1] *= max(count, 1)
            if top[0] > MAX_EXPANDED_SIZE:
                return None
            i = repeat.end()
            continue
        else:
            i += 1
        top = stack[-1]
        top[0] += atom
        top[1] = atom
        if top[0] > MAX_EXPANDED_SIZE:
            return None
    return sum(group[0] for group in stack)


def _compiled(pattern: str) -> Any:
    """The compiled pattern, or ``None`` when it is not ours to enforce."""
    if pattern in _CACHE:
        return _CACHE[pattern]
    found: Any = None
    if len(pattern) <= MAX_PATTERN_LENGTH and _expanded_size(pattern) is not None:
        try:
            found = regex.compile(pattern)
        except (regex.error, ValueError, OverflowError, RecursionError, MemoryError):
            found = None
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[pattern] = found
    return found


class PatternBudget:
    """The matching time one input check may spend, shared by all its patterns."""

    __slots__ = ("left", "skipped")

    def __init__(self, seconds: float = CHECK_BUDGET) -> None:
        self.left = seconds
        self.skipped = 0  # patterns given up on (too complex, or out of time)

    def search(self, pattern: str, value: str) -> bool:
        """Whether ``value`` matches ``pattern`` (``True`` when the pattern is not
        enforced: unusable, too complex, or out of time)."""
        compiled = _compiled(pattern)
        if compiled is None or self.left <= 0:
            self.skipped += 1
            return True
        started = time.perf_counter()
        try:
            return compiled.search(value, timeout=min(MATCH_TIMEOUT, self.left)) is not None
        except (TimeoutError, regex.error, RecursionError, MemoryError):
            self.skipped += 1
            return True
        finally:
            self.left -= time.perf_counter() - started
