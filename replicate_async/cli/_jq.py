"""A small ``--jq`` filter for ``--json`` output: dotted paths, indexes and ``.[]``.

Not jq: just the paths people pipe to ``jq`` most. ``.`` is the object itself,
``.urls.web`` a nested field, ``.output[0]`` (or ``.output.0``) an item, ``.[]`` every
item of a list (or every value of an object), ``.a,.b`` several filters in turn. A
missing field gives ``null``, like jq. Strings are printed raw (like ``jq -r``), anything
else as one line of JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["JqError", "compile_filter", "format_result"]

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\.?\[(-?\d*)\]|\.(\d+)")


class JqError(ValueError):
    """The filter is not one this small language understands."""


def _steps(path: str) -> list[str | int | None]:
    """``.a[0].b[]`` -> ``["a", 0, "b", None]`` (``None`` is ``[]``)."""
    path = path.strip()
    if path == ".":
        return []
    if not path.startswith("."):
        raise JqError(f"a filter starts with '.', got {path!r}")
    steps: list[str | int | None] = []
    pos = 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise JqError(f"cannot read {path!r} at {path[pos:]!r} (use .field, .[N] or .[])")
        name, bracket, number = match.groups()
        if name is not None:
            steps.append(name)
        else:
            index = bracket if bracket is not None else number
            steps.append(int(index) if index else None)
        pos = match.end()
    return steps


def _walk(value: Any, steps: list[str | int | None]) -> Iterator[Any]:
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if step is None:
        if isinstance(value, list):
            items = value
        elif isinstance(value, dict):
            items = list(value.values())
        else:
            raise JqError(f"cannot iterate over {type(value).__name__} with .[]")
        for item in items:
            yield from _walk(item, rest)
    elif isinstance(step, int):
        if value is not None and not isinstance(value, list):
            raise JqError(f"cannot index {type(value).__name__} with [{step}]")
        items = value or []
        yield from _walk(items[step] if -len(items) <= step < len(items) else None, rest)
    else:
        if value is not None and not isinstance(value, dict):
            raise JqError(f"cannot take .{step} of {type(value).__name__}")
        yield from _walk(value.get(step) if value is not None else None, rest)


def compile_filter(expression: str) -> Any:
    """Check ``expression`` now; return a function from one value to its results."""
    paths = [_steps(part) for part in expression.split(",")]

    def apply(value: Any) -> Iterator[Any]:
        for steps in paths:
            yield from _walk(value, steps)

    return apply


def format_result(value: Any, dumps: Any) -> str:
    """A result as a line: strings raw, the rest as JSON (``dumps``)."""
    return value if isinstance(value, str) else str(dumps(value))
