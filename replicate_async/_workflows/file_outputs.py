"""Files out of a model: with ``use_file_output=True``, URL strings in an output become
:class:`FileOutput` objects (``read``, iterate, ``save``). Downloads use the client's pool
and retries, follow redirects one hop at a time, and carry the API token only while the
URL is on the API host itself; ``data:`` URLs are decoded locally.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from .._checks.datauri import decode_data_url, is_data_url
from .._core.errors import safe_url
from ..exceptions import APIResponseValidationError, ReplicateError

if TYPE_CHECKING:
    from .._core.http import HTTPCore

__all__ = ["FileOutput", "wrap_output"]

_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


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
            return decode_data_url(self.url)  # RFC 2397: DataURLError if malformed
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
            yield decode_data_url(self.url)
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
