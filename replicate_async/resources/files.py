"""``/files``: upload inputs once, pass their URL to models."""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import unicodedata
from collections.abc import AsyncIterable, Mapping
from pathlib import Path
from typing import IO, Any, Unpack
from urllib.parse import quote

import aiohttp
import aiohttp.payload
from aiohttp import hdrs

from .._checks import body as check_body
from .._checks import url as check_url
from .._core.http import path
from .._core.options import RequestOptionsDict
from .._core.response import decode
from ..exceptions import InvalidArgumentError
from ..models import File
from ..pagination import AsyncPaginator
from ._base import Resource

#: What ``files.create`` accepts as content.
FileContent = (
    bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes] | AsyncIterable[bytes]
)


_MAX_FILENAME_BYTES = 255
_CHUNK = 64 * 1024


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
        **options: Unpack[RequestOptionsDict],
    ) -> File:
        """Upload a file (multipart ``POST /files``) and return it; pass ``file.urls["get"]``
        as a model input.

        ``content`` is bytes, a path (``str``/``Path``), a binary file object, or an async
        iterable of bytes (streamed; such an upload is not retried). Files are read in a
        worker thread, never on the event loop; bytes are sent from the caller's buffer,
        without a copy. ``filename`` is stored exactly as given (at most 255 UTF-8 bytes).
        """
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
        check_body.check_json_input(dict(metadata or {}), "metadata")
        # A str part (bytes would make aiohttp treat it as a file and warn).
        meta = check_body.json_body(dict(metadata or {})).decode()
        if filename is not None:
            _check_filename(filename)
        _check_content_type(content_type)
        factory, name, retry = await _payload_factory(content, filename)
        _check_filename(name)
        ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"

        async def build() -> aiohttp.MultipartWriter:
            form = aiohttp.MultipartWriter("form-data")
            part = aiohttp.payload.get_payload(await factory(), content_type=ctype)
            part.headers[hdrs.CONTENT_TYPE] = ctype
            part.headers[hdrs.CONTENT_DISPOSITION] = _content_disposition(name)
            form.append_payload(part)
            # The API's own ``filename`` field: the exact name, as UTF-8 text.
            form.append_payload(_text_part("filename", name, "text/plain; charset=utf-8"))
            form.append_payload(_text_part("metadata", meta, "application/json"))
            return form

        response = await self._via(options).request(
            "POST", "files", content=build, read_timeout=None, retry=retry
        )
        return decode(response, File)

    def list(
        self, *, cursor: str | None = None, **options: Unpack[RequestOptionsDict]
    ) -> AsyncPaginator[File]:
        """Uploaded files, newest first."""
        return AsyncPaginator(self._via(options), File, "files", cursor=cursor)

    async def get(self, file_id: str, **options: Unpack[RequestOptionsDict]) -> File:
        """A file's metadata."""
        return await self._get(
            path("files", check_url.require_id(file_id, "file_id")), File, options
        )

    async def delete(self, file_id: str, **options: Unpack[RequestOptionsDict]) -> None:
        """Delete a file; afterwards it is 404."""
        await self._via(options).request(
            "DELETE", path("files", check_url.require_id(file_id, "file_id"))
        )

    async def download(
        self,
        file_id: str,
        *,
        owner: str,
        expiry: int,
        signature: str,
        **options: Unpack[RequestOptionsDict],
    ) -> bytes:
        """A file's bytes through a signed download link (``GET /files/{id}/download``)."""
        fid = check_url.require_id(file_id, "file_id")
        if isinstance(expiry, bool) or not isinstance(expiry, int):
            raise TypeError("expiry must be a unix timestamp (int)")
        check_url.query_text(owner, "owner")
        check_url.query_text(signature, "signature")
        response = await self._via(options).request(
            "GET",
            path("files", fid, "download"),
            params={"owner": owner, "expiry": str(expiry), "signature": signature},
            headers={"Accept": "application/octet-stream"},
        )
        return response.content


async def _payload_factory(content: Any, filename: str | None) -> tuple[Any, str, bool]:
    """A coroutine function giving a fresh payload per attempt, the filename, replayability."""
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())

        async def from_bytes() -> Any:
            return _MemoryPayload(view)

        return from_bytes, filename or "file", True
    if isinstance(content, str | os.PathLike):
        file_path = await _existing_file(content)
        size = (await asyncio.to_thread(file_path.stat)).st_size

        async def from_path() -> Any:
            return _PathPayload(file_path, size)

        return from_path, filename or file_path.name, True
    if isinstance(content, io.IOBase) or hasattr(content, "read"):
        stream: IO[bytes] = content
        seekable = stream.seekable() if hasattr(stream, "seekable") else False
        start = stream.tell() if seekable else 0

        async def from_file() -> Any:
            if seekable:
                await asyncio.to_thread(stream.seek, start)
            return _NoClose(stream)

        name = filename or os.path.basename(str(getattr(stream, "name", "") or "")) or "file"
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


async def _existing_file(content: str | os.PathLike[str]) -> Path:
    """The path of a regular file to upload, or a clear error."""
    if isinstance(content, str) and not content:
        raise InvalidArgumentError("content is an empty path; pass b'' to upload an empty file")
    if "\x00" in os.fspath(content):
        raise InvalidArgumentError("content is not a usable path: it contains a NUL character")
    try:
        file_path = Path(content)
        is_file = await asyncio.to_thread(file_path.is_file)
    except (ValueError, TypeError) as exc:  # e.g. an embedded NUL character
        raise InvalidArgumentError(f"content is not a usable path: {exc}") from None
    if not is_file:
        raise FileNotFoundError(f"no such file (or not a regular file): {str(file_path)[:200]!r}")
    return file_path


def _check_filename(name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"filename must be a string, got {type(name).__name__}")
    if not name:
        raise InvalidArgumentError("filename must not be empty")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidArgumentError("filename must not contain control characters")
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        raise InvalidArgumentError("filename contains a lone surrogate") from None
    if size > _MAX_FILENAME_BYTES:
        raise InvalidArgumentError(
            f"filename is {size} bytes in UTF-8; the API's limit is {_MAX_FILENAME_BYTES}"
        )


def _check_content_type(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"content_type must be a string, got {type(value).__name__}")
    if not value or not value.isascii() or not value.isprintable():
        raise InvalidArgumentError(
            f"content_type must be a MIME type like 'image/png', got {value!r:.80}"
        )


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _content_disposition(name: str) -> str:
    """RFC 7578 ``Content-Disposition`` of the file part: the name as a quoted string,
    plus an RFC 5987 ``filename*`` when it is not ASCII (an ASCII stand-in goes first)."""
    value = (
        f'form-data; name="content"; filename={_quoted(name if name.isascii() else _ascii(name))}'
    )
    if not name.isascii():
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def _ascii(name: str) -> str:
    return "".join(char if char.isascii() else "_" for char in name)


def _text_part(name: str, text: str, content_type: str) -> aiohttp.payload.Payload:
    part = aiohttp.payload.StringPayload(text, content_type=content_type)
    part.headers[hdrs.CONTENT_DISPOSITION] = f"form-data; name={_quoted(name)}"
    return part


class _MemoryPayload(aiohttp.payload.Payload):
    """Bytes sent from the caller's buffer in chunks: no second full copy in memory
    (one big write would be copied into the transport's buffer, twice)."""

    _autoclose = True

    def __init__(self, view: memoryview) -> None:
        super().__init__(view, content_type="application/octet-stream")
        self._size = view.nbytes

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return bytes(self._value)

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        view: memoryview = self._value
        end = view.nbytes if content_length is None else min(content_length, view.nbytes)
        for start in range(0, end, _CHUNK):
            await writer.write(view[start : min(start + _CHUNK, end)])


class _PathPayload(aiohttp.payload.Payload):
    """A file sent by path, read a chunk at a time by worker threads that each open and
    close it, so an upload cancelled before or while it is sent leaves no open file."""

    _autoclose = True

    def __init__(self, file_path: Path, size: int) -> None:
        super().__init__(file_path, content_type="application/octet-stream")
        self._size = self._length = size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return Path(self._value).read_bytes().decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return await asyncio.to_thread(Path(self._value).read_bytes)

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        end = self._length if content_length is None else min(content_length, self._length)
        offset = 0
        while offset < end:
            chunk = await asyncio.to_thread(_read_chunk, self._value, offset, end - offset)
            if not chunk:
                break
            await writer.write(chunk)
            offset += len(chunk)


def _read_chunk(file_path: Path, offset: int, most: int) -> bytes:
    """One chunk, in a worker thread that opens and closes the file itself: no handle ever
    outlives the call, whatever cancels the upload and whenever."""
    with file_path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(min(_CHUNK, most))


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
