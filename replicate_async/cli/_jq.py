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


_MAX_DIGITS = 18
_OUT_OF_RANGE: int = 10**_MAX_DIGITS


class JqError(ValueError):
    """The filter is not one this small language understands."""


def _clip(text: str, width: int = 40) -> str:
    """``text`` cut for a message."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _index(text: str) -> int:
    """An index; one beyond any list (more than 18 digits) is kept just out of range."""
    digits = text.lstrip("-")
    if len(digits) > _MAX_DIGITS:
        return -_OUT_OF_RANGE if text.startswith("-") else _OUT_OF_RANGE
    return int(text)


def _steps(path: str) -> list[str | int | None]:
    """``.a[0].b[]`` -> ``["a", 0, "b", None]`` (``None`` is ``[]``)."""
    path = path.strip()
    if path == ".":
        return []
    if not path.startswith("."):
        raise JqError(f"a filter starts with '.', got {_clip(path)!r}")
    steps: list[str | int | None] = []
    pos = 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise JqError(
                f"cannot read {_clip(path)!r} at {_clip(path[pos:])!r} (use .field, .[N] or .[])"
            )
        name, bracket, number = match.groups()
        if name is not None:
            steps.append(name)
        else:
            index = bracket if bracket is not None else number
            steps.append(_index(index) if index else None)
        pos = match.end()
    return steps


def _step(value: Any, step: str | int | None) -> list[Any]:
    """The results of one step on one value."""
    if step is None:
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            return list(value.values())
        raise JqError(f"cannot iterate over {_kind(value)} with .[]")
    if isinstance(step, int):
        if value is not None and not isinstance(value, list):
            raise JqError(f"cannot index {_kind(value)} with [{step}]")
        items = value or []
        return [items[step] if -len(items) <= step < len(items) else None]
    if value is not None and not isinstance(value, dict):
        raise JqError(f"cannot take .{_clip(step)} of {_kind(value)}")
    return [value.get(step) if value is not None else None]


def _kind(value: Any) -> str:
    """A JSON type's name: ``string``, ``object``, ``array``..."""
    names = {str: "a string", dict: "an object", list: "an array", bool: "a boolean"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "null")


def _walk(value: Any, steps: list[str | int | None]) -> list[Any]:
    """Every result of ``steps`` on ``value``, step by step (no recursion, so a filter of
    thousands of steps is as safe as a short one)."""
    current = [value]
    for step in steps:
        current = [result for item in current for result in _step(item, step)]
    return current


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
