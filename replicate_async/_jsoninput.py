"""Is a value JSON that the API can take? Checked before anything is sent.

Model inputs (and file metadata) must be JSON-representable: no NaN or infinity, no
cycles, nested at most :data:`MAX_JSON_DEPTH` levels, strings without lone surrogates
(UTF-8 cannot carry them), integers within 64 bits (what the JSON encoders and the API
take). Files (bytes, paths, binary file objects, async iterables) are allowed anywhere:
they are inlined or uploaded before the request is built.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import AsyncIterable, Mapping
from typing import Any

from .exceptions import InvalidArgumentError

__all__ = ["MAX_JSON_DEPTH", "check_json_input"]

#: The deepest nesting of lists and objects accepted in a model input.
MAX_JSON_DEPTH = 64
_INT_RANGE = (-(2**63), 2**64)


def _is_file(value: Any) -> bool:
    """What ``prepare_input`` turns into a URL: bytes, paths, binary files, async iterables."""
    return isinstance(value, bytes | bytearray | memoryview | os.PathLike | io.IOBase) or (
        hasattr(value, "read") or isinstance(value, AsyncIterable)
    )


#: Where a value sits, rendered only when there is something to report: the root's name,
#: or (parent, key) for an item of a list or object.
_Where = str | tuple["_Where", object]


def _named(where: _Where) -> str:
    keys: list[object] = []
    while isinstance(where, tuple):
        where, key = where
        keys.append(key)
    return where + "".join(f"[{key!r:.40}]" for key in reversed(keys))


def _check_text(text: str, where: _Where) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError(
                f"{_named(where)} contains a lone surrogate, which UTF-8 JSON cannot carry"
            ) from None


def check_json_input(value: Any, what: str = "input") -> None:
    """Check that ``value`` can be sent as JSON, before anything is sent.

    :class:`InvalidArgumentError` for NaN/infinity, cycles, nesting deeper than
    :data:`MAX_JSON_DEPTH`, lone surrogates and integers outside 64 bits; ``TypeError``
    (naming where) for a value of a type JSON has no form for. Files are allowed.
    """
    if not _plain(value, 0, set()):
        _check_json(value, what, 0, set())


def _plain(value: Any, depth: int, seen: set[int]) -> bool:
    """True if ``value`` is plainly fine: a tree of exact dicts and lists (at most
    :data:`MAX_JSON_DEPTH` deep, none met twice) of ASCII strings, 64-bit ints, finite
    floats, bools and ``None``. Anything else (a file, a subclass, non-ASCII text, a shared
    or cyclic container, a problem) is left to the full walk, which names where a problem
    is. Most inputs are a flat object of such values: one loop, one set entry."""
    kind = type(value)
    if kind is dict:
        if depth >= MAX_JSON_DEPTH or id(value) in seen:
            return False
        seen.add(id(value))
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            kind = type(item)
            if kind is str:
                if not item.isascii():
                    return False
            elif kind is int:
                if not _INT_RANGE[0] <= item < _INT_RANGE[1]:
                    return False
            elif kind is float:
                if item - item != 0.0:  # NaN and infinities
                    return False
            elif item is not None and kind is not bool and not _plain(item, depth + 1, seen):
                return False
        return True
    if kind is list:
        if depth >= MAX_JSON_DEPTH or id(value) in seen:
            return False
        seen.add(id(value))
        return all(_plain(item, depth + 1, seen) for item in value)
    if kind is str:
        return bool(value.isascii())
    if kind is int:
        return bool(_INT_RANGE[0] <= value < _INT_RANGE[1])
    if kind is float:
        return bool(value - value == 0.0)
    return value is None or kind is bool


def _check_json(value: Any, where: _Where, depth: int, active: set[int]) -> None:
    kind = type(value)
    if kind is str:
        _check_text(value, where)
    elif value is None or kind is bool:
        return
    elif isinstance(value, int):
        if not _INT_RANGE[0] <= value < _INT_RANGE[1]:
            raise InvalidArgumentError(f"{_named(where)} is an integer outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{_named(where)} is {value!r}, which JSON cannot represent")
    elif isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, Mapping | list | tuple):
        _check_container(value, where, depth + 1, active)
    elif not _is_file(value):
        raise TypeError(
            f"{_named(where)} is a {type(value).__name__}, which is not JSON-serialisable"
        )


def _check_container(value: Any, where: _Where, depth: int, active: set[int]) -> None:
    if id(value) in active:
        raise InvalidArgumentError(
            f"{_named(where)} contains itself (a cycle cannot be sent as JSON)"
        )
    if depth > MAX_JSON_DEPTH:
        raise InvalidArgumentError(f"{_named(where)} is nested deeper than {MAX_JSON_DEPTH} levels")
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"{_named(where)} has a key {key!r:.40}: keys must be strings")
                _check_text(key, ("a key of " + _named(where)) if not key.isascii() else where)
                _check_json(item, (where, key), depth, active)
        else:
            for index, item in enumerate(value):
                _check_json(item, (where, index), depth, active)
    finally:
        active.discard(id(value))
