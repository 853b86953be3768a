"""Files in (paths, bytes, file objects inside inputs) and files out (:class:`FileOutput`).

Inputs: a :class:`pathlib.Path`, bytes, a binary file object or an async iterable of
bytes anywhere in an input tree is replaced before the prediction is created: small ones
(up to ``data_url_threshold``, 256 KiB by default, the API's advice) by a ``data:`` URL,
larger ones by the URL of an upload through the Files API (several at once). Plain
strings are never treated as paths. Files are read in worker threads, never on the loop.

Outputs: with ``use_file_output=True``, URL strings in an output become
:class:`FileOutput` objects. Downloads use the client's pool and retries, and carry the
API token only when the URL is on the API host itself.
"""

from __future__ import annotations

import asyncio
import base64
import io
import mimetypes
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ._check_body import PLAIN_TYPES, is_file
from ._datauri import decode_data_url, is_data_url
from ._errors import safe_url
from .exceptions import APIResponseValidationError, ReplicateError
from .resources.files import Files

if TYPE_CHECKING:
    from ._http import HTTPCore

__all__ = ["DATA_URL_THRESHOLD", "FileOutput", "prepare_input", "wrap_output"]

#: Files up to this size are inlined as ``data:`` URLs; larger ones are uploaded.
DATA_URL_THRESHOLD = 256 * 1024
#: Uploads running at once for one input.
UPLOAD_CONCURRENCY = 4
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


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
            return _data_url(data, "application/octet-stream")
    elif isinstance(value, os.PathLike):
        path = Path(value)
        size = await asyncio.to_thread(os.path.getsize, path)
        if size <= threshold:
            data = await asyncio.to_thread(path.read_bytes)
            return _data_url(data, mimetypes.guess_type(path.name)[0])
        name = path.name
    elif hasattr(value, "read") and not isinstance(value, AsyncIterable):
        remaining: int | None = await asyncio.to_thread(_remaining_size, value)
        if remaining is not None and remaining <= threshold:
            data = await asyncio.to_thread(value.read)
            ctype = mimetypes.guess_type(str(getattr(value, "name", "")))[0]
            return _data_url(data, ctype)
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


def _data_url(data: bytes, content_type: str | None) -> str:
    ctype = content_type or "application/octet-stream"
    return f"data:{ctype};base64,{base64.b64encode(data).decode()}"


def _redirect_target(url: str, status: int, headers: Mapping[str, str]) -> str | None:
    """The absolute URL a 3xx answer points to, or ``None`` if it is not a redirect."""
    location = headers.get("Location")
    if status not in _REDIRECTS or not location:
        return None
    try:
        return urljoin(url, location)
    except ValueError as exc:  # e.g. an unclosed "[" IPv6 host
        raise APIResponseValidationError(
            f"a download redirect to a malformed Location: {location[:200]!r}",
            method="GET",
            url=safe_url(url),
            status=status,
        ) from exc


def _decode_data_url(url: str) -> bytes:
    return decode_data_url(url)  # RFC 2397; a malformed URL raises DataURLError


class FileOutput:
    """A file produced by a model: ``await f.read()``, ``async for chunk in f``,
    ``await f.save(path)``; ``f.url`` (and ``str(f)``) is the URL itself."""

    __slots__ = ("_http", "url")

    def __init__(self, url: str, http: HTTPCore) -> None:
        self.url = url
        self._http = http

    async def read(self) -> bytes:
        """The whole file. ``data:`` URLs are decoded locally."""
        if is_data_url(self.url):
            return _decode_data_url(self.url)
        url, auth = self.url, True
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._http.request("GET", url, headers={"Accept": "*/*"}, auth=auth)
            # Redirects are followed here, one hop at a time: the token goes only to the
            # API host, and never on a hop that another host chose.
            target = _redirect_target(url, response.status, response.headers)
            if target is None:
                return response.content
            auth = auth and self._http.is_api_url(url)
            url = target
        raise ReplicateError(f"too many redirects downloading {self.url:.80}")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        if is_data_url(self.url):
            yield _decode_data_url(self.url)
            return
        url, auth = self.url, True
        for _ in range(_MAX_REDIRECTS + 1):
            opened = self._http.stream(
                "GET", url, headers={"Accept": "*/*"}, auth=auth, download=True
            )
            async with opened as resp:
                target = _redirect_target(url, resp.status, resp.headers)
                if target is None:
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        yield chunk
                    return
            auth = auth and self._http.is_api_url(url)
            url = target
        raise ReplicateError(f"too many redirects downloading {self.url:.80}")

    async def save(self, path: str | os.PathLike[str]) -> Path:
        """Stream the file to ``path`` (written in a worker thread) and return the path."""
        target = Path(path)
        handle = await asyncio.to_thread(target.open, "wb")
        try:
            async for chunk in self:
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        return target

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        shown = self.url if len(self.url) <= 80 else self.url[:77] + "..."
        return f"FileOutput({shown!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileOutput) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)


def wrap_output(output: Any, file: Callable[[str], FileOutput]) -> Any:
    """Replace URL strings (``http(s):`` and ``data:``) in an output by ``file(url)``.

    Iterative, so an output nested any depth is wrapped (it came from a run that succeeded
    and was paid for: wrapping must never be what fails it)."""
    root: list[Any] = [None]
    todo: list[tuple[Any, Any, Any]] = [(output, root, 0)]  # (value, container, key)
    while todo:
        value, container, key = todo.pop()
        if isinstance(value, str):
            wrapped = value.startswith(("https://", "http://", "data:"))
            container[key] = file(value) if wrapped else value
        elif isinstance(value, list):
            items: list[Any] = [None] * len(value)
            container[key] = items
            todo.extend((item, items, index) for index, item in enumerate(value))
        elif isinstance(value, dict):
            fields = dict.fromkeys(value)
            container[key] = fields
            todo.extend((item, fields, name) for name, item in value.items())
        else:
            container[key] = value
    return root[0]
