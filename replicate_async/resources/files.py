"""``/files``: upload inputs once, pass their URL to models."""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
from collections.abc import AsyncIterable, Mapping
from pathlib import Path
from typing import IO, Any

import aiohttp

from .. import _validate as check
from .._http import path
from ..models import File
from ..pagination import AsyncPaginator
from ._base import Resource, _decode

#: What ``files.create`` accepts as content.
FileContent = (
    bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes] | AsyncIterable[bytes]
)


class Files(Resource):
    """Files uploaded to the account (they expire after a day)."""

    __slots__ = ()

    async def create(
        self,
        content: FileContent,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> File:
        """Upload a file (multipart ``POST /files``) and return it; pass ``file.urls["get"]``
        as a model input.

        ``content`` is bytes, a path (``str``/``Path``), a binary file object, or an async
        iterable of bytes (streamed; such an upload is not retried). Files are read in a
        worker thread, never on the event loop.
        """
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError("metadata must be a mapping")
        # A str part (bytes would make aiohttp treat it as a file and warn).
        meta = check.json_body(dict(metadata or {})).decode()
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"filename must be a string, got {type(filename).__name__}")
        factory, name, retry = await _payload_factory(content, filename)
        if len(name.encode()) > 255:
            raise ValueError("filename must be at most 255 bytes (the API's limit)")
        ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"

        async def build() -> aiohttp.FormData:
            form = aiohttp.FormData()
            form.add_field("content", await factory(), filename=name, content_type=ctype)
            form.add_field("metadata", meta, content_type="application/json")
            return form

        response = await self._http.request(
            "POST", "files", content=build, read_timeout=None, retry=retry
        )
        return _decode(response, File)

    def list(self, *, cursor: str | None = None) -> AsyncPaginator[File]:
        """Uploaded files, newest first."""
        return AsyncPaginator(self._http, File, "files", cursor=cursor)

    async def get(self, file_id: str) -> File:
        """A file's metadata."""
        return await self._get(path("files", check.require_id(file_id, "file_id")), File)

    async def delete(self, file_id: str) -> None:
        """Delete a file; afterwards it is 404."""
        await self._http.request("DELETE", path("files", check.require_id(file_id, "file_id")))

    async def download(self, file_id: str, *, owner: str, expiry: int, signature: str) -> bytes:
        """A file's bytes through a signed download link (``GET /files/{id}/download``)."""
        fid = check.require_id(file_id, "file_id")
        if isinstance(expiry, bool) or not isinstance(expiry, int):
            raise TypeError("expiry must be a unix timestamp (int)")
        if not owner or not signature:
            raise ValueError("owner and signature are required")
        response = await self._http.request(
            "GET",
            path("files", fid, "download"),
            params={"owner": owner, "expiry": str(expiry), "signature": signature},
            headers={"Accept": "application/octet-stream"},
        )
        return response.content


async def _payload_factory(content: Any, filename: str | None) -> tuple[Any, str, bool]:
    """A coroutine function giving a fresh payload per attempt, the filename, replayability."""
    if isinstance(content, bytes | bytearray | memoryview):
        data = bytes(content)

        async def from_bytes() -> Any:
            return data

        return from_bytes, filename or "file", True
    if isinstance(content, str | os.PathLike):
        file_path = Path(content)
        if not await asyncio.to_thread(file_path.is_file):
            raise FileNotFoundError(f"no such file: {file_path}")

        async def from_path() -> Any:
            # aiohttp reads (and closes) file payloads in a worker thread.
            return await asyncio.to_thread(file_path.open, "rb")

        return from_path, filename or file_path.name, True
    if isinstance(content, io.IOBase) or hasattr(content, "read"):
        stream: IO[bytes] = content
        seekable = stream.seekable() if hasattr(stream, "seekable") else False
        start = stream.tell() if seekable else 0

        async def from_file() -> Any:
            if seekable:
                await asyncio.to_thread(stream.seek, start)
            return _NoClose(stream)

        name = filename or os.path.basename(getattr(stream, "name", "") or "") or "file"
        return from_file, name, seekable
    if isinstance(content, AsyncIterable):
        used = False

        async def from_iterable() -> Any:
            nonlocal used
            if used:
                raise RuntimeError("an async iterable upload cannot be sent twice")
            used = True
            return content

        return from_iterable, filename or "file", False
    raise TypeError(
        "content must be bytes, a path, a binary file object or an async iterable of bytes, "
        f"got {type(content).__name__}"
    )


class _NoClose(io.RawIOBase):
    """A view of the caller's file that aiohttp may 'close' without closing theirs."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
