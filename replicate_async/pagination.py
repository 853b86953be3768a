"""Lazy cursor pagination.

Every list method returns an :class:`AsyncPaginator` from a plain (non-async) call:

- ``async for item in client.models.list():`` walks every item, one page in memory;
- ``page = await client.models.list()`` fetches just the first :class:`~replicate_async.Page`;
- ``async for page in client.models.list().pages():`` walks page by page;
- ``client.models.list(cursor=page.next)`` resumes a walk from a saved ``next`` URL (or
  from a raw cursor value).

``next`` links are followed as given, but only to the list's own path on the configured
API host: a link to another host or another path is a
:class:`~replicate_async.PaginationError` (nothing is sent, so the token never goes
there), an ``http://`` link on the API host is upgraded to ``https://``, and a link
already visited stops the walk with an error instead of looping forever. A ``cursor=``
that is not a URL (``http(s)://...`` or ``/...``) is an opaque value: it goes,
percent-encoded, into the query of the list's own path, never into the path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ._converter import StructureError, structure_list
from ._core.http import HTTPCore
from ._core.raw import RawResponse, captured
from ._core.response import Response, decode
from .exceptions import InvalidArgumentError, PaginationError
from .models import Page

__all__ = ["AsyncPaginator"]

T = TypeVar("T")


class AsyncPaginator(Generic[T]):
    """A lazily fetched, cursor-paginated list: awaitable (first page) and async-iterable."""

    __slots__ = (
        "_content",
        "_headers",
        "_http",
        "_item",
        "_method",
        "_params",
        "_path",
        "_start_url",
        "last_response",
    )

    def __init__(
        self,
        http: HTTPCore,
        item: type[T],
        path: str,
        *,
        method: str = "GET",
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        cursor: str | None = None,
    ) -> None:
        self._http = http
        self._item = item
        #: The last page's :class:`~replicate_async.RawResponse` (status, headers, request
        #: id, elapsed, retries; ``.parse()`` is the page); ``None`` before the first page
        #: arrives and while the next one is fetched (the previous page is let go first).
        self.last_response: RawResponse[Page[T]] | None = None
        self._method = method
        self._params: dict[str, str] = dict(params or {})
        self._content = content
        self._headers = headers
        start = http.url(path)
        #: The list's own path: every page (``next`` links, resumed cursors) must be on it.
        self._path = urlsplit(start).path.rstrip("/")
        if cursor is not None:
            start = self._resume_url(start, cursor)
        self._start_url = start

    def _resume_url(self, start: str, cursor: str) -> str:
        if not isinstance(cursor, str) or not cursor or cursor == "null":
            raise InvalidArgumentError(
                "cursor must be a non-empty string: a page's `next` URL or cursor"
            )
        if cursor.startswith(("http://", "https://", "/")):
            # A saved ``next`` link: the same host and path checks apply as during a walk.
            # Anything else is a raw cursor, opaque (base64 may itself hold "/", "+", "="):
            # it never becomes a path, whatever it contains ("abc?x=1" included).
            return self._checked(cursor)
        query = dict(self._params)
        query["cursor"] = cursor
        return f"{start}?{urlencode(query)}"

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self._fetch(self._start_url).__await__()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        # A walk holds one page at a time: each is let go before the next is fetched and
        # built, so the collector never scans two pages' objects (or keeps their memory).
        async for page in self.pages():
            results = page.results
            del page
            for item in results:
                yield item
            del results

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Yield pages one at a time; the next one is fetched only when asked for."""
        url: str | None = self._start_url
        visited: set[str] = set()
        while url is not None:
            visited.add(url)
            page = await self._fetch(url)
            yield page
            url = self._next_url(page.next, visited)
            del page  # not held while the next one is fetched

    async def collect(self, limit: int | None = None) -> list[T]:
        """All items (or the first ``limit``) as a list. Prefer ``async for`` for big lists."""
        if limit is not None and limit < 0:
            raise InvalidArgumentError("limit must be >= 0")
        items: list[T] = []
        if limit == 0:
            return items
        async for item in self:
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items

    async def _fetch(self, url: str) -> Page[T]:
        params = self._params if url == self._start_url and "?" not in url else None
        self.last_response = None  # nor here: the previous page goes before this one comes
        raw = await captured(
            self._http.request(
                self._method, url, params=params, content=self._content, headers=self._headers
            )
        )
        page = self._decode(raw.parse())
        self.last_response = raw.with_parsed(page)
        return page

    def _decode(self, response: Response) -> Page[T]:
        item = self._item
        page: Page[T] = decode(response, lambda data: _build_page(data, item))
        return page

    def _next_url(self, link: str | None, visited: set[str]) -> str | None:
        if link is None or link == "" or link == "null":
            return None
        url = self._checked(link)
        if url in visited:
            raise PaginationError(f"pagination loop: the next link {url!r} was already visited")
        return url

    def _checked(self, link: str) -> str:
        """Resolve a ``next`` link against the API, refusing other hosts, keeping filters."""
        try:
            return self._resolve(link)
        except ValueError as exc:  # unparsable: an unclosed "[" IPv6 host, a port > 65535...
            raise PaginationError(
                f"refusing to follow a malformed pagination link: {link[:200]!r}"
            ) from exc

    def _resolve(self, link: str) -> str:
        http = self._http
        base_path = urlsplit(http.base_url).path
        if link.startswith("/") and not link.startswith(("//", base_path)):
            # A relative link without the version prefix (``/collections?cursor=...``).
            link = base_path + link[1:]
        url = urljoin(http.base_url, link)
        parts = urlsplit(url)
        base = urlsplit(http.base_url)
        if parts.scheme == "http" and base.scheme == "https" and parts.netloc == base.netloc:
            parts = parts._replace(scheme="https")  # never send the token in clear text
        url = urlunsplit(parts)
        if not http.is_api_url(url):
            raise PaginationError(
                f"refusing to follow a pagination link to another host: {parts.netloc!r} "
                f"(the API is at {base.netloc!r})"
            )
        if parts.path.rstrip("/") != self._path:
            raise PaginationError(
                f"refusing to follow a pagination link to another path: {parts.path[:200]!r} "
                f"(this list is {self._path!r})"
            )
        if self._params:
            # The API's link carries the cursor; the caller's filters must survive too.
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            missing = {k: v for k, v in self._params.items() if k not in query}
            if missing:
                url = urlunsplit(parts._replace(query=urlencode({**query, **missing})))
        return url


def _build_page(data: Any, item: type[T]) -> Page[T]:
    if not isinstance(data, dict):
        raise StructureError(f"expected a page object, got {type(data).__name__}")
    nxt = data.get("next")
    prev = data.get("previous")
    return Page(
        results=structure_list(data.get("results"), item),
        next=nxt if isinstance(nxt, str) and nxt not in ("", "null") else None,
        previous=prev if isinstance(prev, str) and prev not in ("", "null") else None,
    )
