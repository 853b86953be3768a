"""Files in a model input: a :class:`pathlib.Path`, bytes, a binary file object or an
async iterable of bytes anywhere in an input tree is replaced before the prediction is
created: small ones (up to ``data_url_threshold``, 256 KiB by default, the API's advice)
by a ``data:`` URL, larger ones by the URL of an upload through the Files API (several at
once). Plain strings are never treated as paths. Files are read in worker threads, never
on the loop. What counts as a file is :func:`~replicate_async._checks.body.is_file`.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
from collections.abc import AsyncIterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._checks.body import PLAIN_TYPES, is_file
from .._checks.datauri import encode_data_url
from ..exceptions import ReplicateError
from ..resources.files import Files

if TYPE_CHECKING:
    from .._core.http import HTTPCore

__all__ = ["DATA_URL_THRESHOLD", "UPLOAD_CONCURRENCY", "prepare_input"]

#: Files up to this size are inlined as ``data:`` URLs; larger ones are uploaded.
DATA_URL_THRESHOLD = 256 * 1024
#: Uploads running at once for one input.
UPLOAD_CONCURRENCY = 4


def _contains_file(value: Any) -> bool:
    if type(value) in PLAIN_TYPES:
        return False
    if type(value) is dict or isinstance(value, Mapping):
        return any(_contains_file(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_file(v) for v in value)
    return is_file(value)


async def prepare_input(
    http: HTTPCore, value: Any, *, data_url_threshold: int = DATA_URL_THRESHOLD
) -> Any:
    """Replace every file in an input tree by a ``data:`` URL or an uploaded file's URL.

    Uploads run at most :data:`UPLOAD_CONCURRENCY` at once, as siblings in a task group:
    if one fails, the others are cancelled and the first error is raised (alone).
    """
    if not _contains_file(value):
        return value
    slots = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    encoded: dict[int, str] = {}

    async def encode(item: Any) -> None:
        async with slots:
            encoded[id(item)] = await _encode_file(http, item, data_url_threshold)

    try:
        async with asyncio.TaskGroup() as group:
            for item in _files_in(value):
                if id(item) not in encoded:
                    encoded[id(item)] = ""
                    group.create_task(encode(item))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return _replace(value, encoded)


def _files_in(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _files_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _files_in(item)
    elif is_file(value):
        yield value


def _replace(value: Any, encoded: Mapping[int, str]) -> Any:
    if isinstance(value, Mapping):
        return {key: _replace(item, encoded) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(item, encoded) for item in value]
    return encoded[id(value)] if is_file(value) else value


async def _encode_file(http: HTTPCore, value: Any, threshold: int) -> str:
    name = "file"
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if len(data) <= threshold:
            return encode_data_url(data, "application/octet-stream")
    elif isinstance(value, os.PathLike):
        path = Path(value)
        size = await asyncio.to_thread(os.path.getsize, path)
        if size <= threshold:
            data = await asyncio.to_thread(path.read_bytes)
            return encode_data_url(data, mimetypes.guess_type(path.name)[0])
        name = path.name
    elif hasattr(value, "read") and not isinstance(value, AsyncIterable):
        remaining: int | None = await asyncio.to_thread(_remaining_size, value)
        if remaining is not None and remaining <= threshold:
            data = await asyncio.to_thread(value.read)
            ctype = mimetypes.guess_type(str(getattr(value, "name", "")))[0]
            return encode_data_url(data, ctype)
    return await _upload(http, value, name)


def _remaining_size(stream: Any) -> int | None:
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
        return int(end - here)
    except (AttributeError, OSError, ValueError):
        return None


async def _upload(http: HTTPCore, value: Any, name: str) -> str:
    uploaded = await Files(http).create(value, filename=None if name == "file" else name)
    url = (uploaded.urls or {}).get("get")
    if not url:
        raise ReplicateError(f"the uploaded file {uploaded.id} has no urls.get to pass on")
    return url
