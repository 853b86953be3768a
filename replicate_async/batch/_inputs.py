"""Inputs streamed into the ledger: any iterable, async iterable or JSONL file, in chunks,
each input under the caller's key (never the whole list in memory)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

from ..exceptions import InvalidArgumentError
from ._items import canonical

__all__ = ["Inputs", "KeyFunc", "key_function", "keyed_chunks"]

Inputs = Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]] | str | os.PathLike[str]
KeyFunc = Callable[[Mapping[str, Any]], Any]
#: Inputs added to the ledger per write.
CHUNK = 500


def key_function(key: str | KeyFunc) -> Callable[[Mapping[str, Any]], str]:
    """The caller's id of an input: a field's value, or what a function returns."""
    if isinstance(key, str):
        if not key:
            raise InvalidArgumentError("key must name a field of the inputs, or be a function")
        field = key

        def by_field(item: Mapping[str, Any]) -> str:
            try:
                value = item[field]
            except KeyError:
                raise InvalidArgumentError(f"an input has no key field {field!r}") from None
            return str(value)

        return by_field
    if not callable(key):
        raise TypeError(f"key must be a field name or a function, got {type(key).__name__}")

    def by_function(item: Mapping[str, Any]) -> str:
        return str(key(item))

    return by_function


def _jsonl(path: str) -> Iterator[Mapping[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise InvalidArgumentError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(item, dict):
                raise InvalidArgumentError(f"{path}:{number}: an input must be a JSON object")
            yield item


async def _aiter(inputs: Inputs) -> AsyncIterator[Mapping[str, Any]]:
    if isinstance(inputs, str | os.PathLike):
        source: Iterable[Mapping[str, Any]] = _jsonl(os.fspath(inputs))
    elif isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
        return
    else:
        source = inputs
    for count, item in enumerate(source, 1):
        yield item
        if count % CHUNK == 0:
            await asyncio.sleep(0)  # a long file or generator never holds the loop


async def keyed_chunks(
    inputs: Inputs, key: Callable[[Mapping[str, Any]], str]
) -> AsyncIterator[list[tuple[str, str]]]:
    """``(key, input JSON)`` rows, ``CHUNK`` at a time."""
    if isinstance(inputs, bytes | Mapping):
        raise TypeError(f"inputs must be an iterable of mappings, got {type(inputs).__name__}")
    chunk: list[tuple[str, str]] = []
    async for item in _aiter(inputs):
        if not isinstance(item, Mapping):
            raise TypeError(f"each input must be a mapping, got {type(item).__name__}")
        chunk.append((key(item), canonical(dict(item))))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
