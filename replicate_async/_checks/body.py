"""Checks for what a request body carries, before anything is sent.

- **Model inputs** (and file metadata) must be JSON-representable: no NaN or infinity, no
  cycles, nested at most :data:`MAX_JSON_DEPTH` levels, strings without lone surrogates
  (UTF-8 cannot carry them), integers within 64 bits (what the JSON encoders and the API
  take). Files (bytes, paths, binary file objects, async iterables) are allowed anywhere:
  they are inlined or uploaded before the request is built.
- **Webhooks**: an absolute http(s) URL with a host, and an events filter naming only the
  events the API knows.
- **The body itself** is serialised by :func:`json_body` before the request is built, so
  an unserialisable value fails with the place it sits, not inside the send.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from .._converter import dumps
from ..exceptions import InvalidArgumentError
from .url import shown, split_url

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_URL_LENGTH",
    "PLAIN_TYPES",
    "check_input",
    "check_json_input",
    "events_filter",
    "is_file",
    "json_body",
    "webhook_url",
]

#: The deepest nesting of lists and objects accepted in a model input.
MAX_JSON_DEPTH = 64
_INT_RANGE = (-(2**63), 2**64)
#: The longest webhook URL accepted.
MAX_URL_LENGTH = 2048
_WEBHOOK_EVENTS = frozenset({"start", "output", "logs", "completed"})


#: Exact types of JSON scalars: never files nor containers, decided before the (slower)
#: ABC checks.
PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})
_FILE_TYPES = (bytes, bytearray, memoryview, os.PathLike, io.IOBase, AsyncIterable)


def is_file(value: Any) -> bool:
    """Whether an input value is a file, which ``prepare_input`` inlines or uploads (and an
    input schema counts as a string, since it becomes a URL): bytes, a path
    (``os.PathLike``), a file object (anything with ``read``) or an async iterable of
    bytes. Text and JSON containers never are, even with a ``read`` attribute or as a
    path-like mapping: those are sent as JSON, and walked for files inside them."""
    if type(value) in PLAIN_TYPES or isinstance(value, str | Mapping | list | tuple):
        return False
    return isinstance(value, _FILE_TYPES) or hasattr(value, "read")


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
    elif not is_file(value):
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


def check_input(value: Any) -> dict[str, Any]:
    """A model input: a mapping with string keys whose values are JSON-representable
    (files anywhere in it are allowed: they are uploaded or inlined later)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"input must be a mapping of input names to values, got {value!r:.80}")
    check_json_input(value, "input")
    return dict(value)


def json_body(body: Mapping[str, Any]) -> bytes:
    """Serialise a request body now, so an unserialisable value fails before sending."""
    try:
        return dumps(body)
    except (TypeError, ValueError, RecursionError) as exc:
        problem = exc
    check_json_input(body, "the request body")  # raises the precise error, naming where
    raise TypeError(f"the request body is not JSON-serialisable: {problem}")


def webhook_url(value: Any) -> str:
    """A webhook URL: an absolute http(s) URL with a host (the API requires HTTPS in
    production), without whitespace or control characters."""
    if not isinstance(value, str):
        raise TypeError(f"webhook must be a URL string, got {type(value).__name__}")
    if len(value) > MAX_URL_LENGTH:
        raise InvalidArgumentError(f"webhook is longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise InvalidArgumentError(
            f"webhook must not contain whitespace or control characters, got {shown(value)}"
        )
    scheme, host = split_url(value)
    if scheme not in ("https", "http") or not host:
        raise InvalidArgumentError(
            f"webhook must be an https:// URL with a host, got {shown(value)}"
        )
    return value


def events_filter(events: Iterable[str] | None, *, webhook: str | None) -> list[str] | None:
    """Check ``webhook_events_filter`` against the events the API knows (and that a
    ``webhook`` is given: a filter without one would be silently ignored)."""
    if events is None:
        return None
    if isinstance(events, str):
        raise TypeError("webhook_events_filter must be a list of event names, not a string")
    if not isinstance(events, Iterable):
        raise TypeError(
            f"webhook_events_filter must be a list of event names, got {type(events).__name__}"
        )
    chosen = list(events)
    unknown = [e for e in chosen if e not in _WEBHOOK_EVENTS]
    if unknown:
        raise InvalidArgumentError(
            f"unknown webhook events {unknown!r:.200}; choose from {sorted(_WEBHOOK_EVENTS)}"
        )
    if webhook is None:
        raise InvalidArgumentError("webhook_events_filter needs a webhook= URL to deliver to")
    return chosen
