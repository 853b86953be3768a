"""The one place where transport failures and error statuses become our exception tree.

Both mappers are pure: they build an exception and touch no state (the throttle is told
about a 429 by the request path, not from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .._converter import loads
from ..exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    RequestMayHaveSucceededError,
    RequestMayHaveSucceededTimeoutError,
    status_error_class,
)
from .retry import parse_retry_after

__all__ = ["MAX_ERROR_TEXT", "describe", "reason", "safe_url", "status_error", "transport_error"]

#: How much of an undecodable body an error keeps.
MAX_ERROR_TEXT: Final = 2048
#: Everything aiohttp, asyncio and the OS raise for a failed exchange.
TRANSPORT_ERRORS: Final = (TimeoutError, aiohttp.ClientError, OSError)


def status_error(
    method: str, url: str, status: int, headers: CIMultiDictProxy[str], content: bytes
) -> APIStatusError:
    """The typed error for an error status, with the problem body's title and detail."""
    body = _error_body(content)
    problem = body if isinstance(body, Mapping) else {}
    title, detail = problem.get("title"), problem.get("detail")
    parts = [p for p in (title, detail) if isinstance(p, str) and p]
    message = ": ".join(parts) if parts else reason(status)
    cls = status_error_class(status)
    kwargs: dict[str, Any] = {
        "method": method,
        "url": safe_url(url),
        "status": status,
        "headers": headers,
        "body": body,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=parse_retry_after(headers, body), **kwargs)
    return cls(message, **kwargs)


def _error_body(content: bytes) -> Any:
    if content.lstrip()[:1] in (b"{", b"["):
        try:
            return loads(content)
        except (ValueError, RecursionError, OverflowError):
            pass  # a hostile or broken body is kept as text
    return content[:MAX_ERROR_TEXT].decode(errors="replace")


def transport_error(exc: BaseException, method: str, url: str, *, creates: bool) -> APIError:
    """The error of our tree that an aiohttp/asyncio/OS failure becomes (chain it)."""
    redact(exc)
    shown = safe_url(url)
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        # The connection never opened: the request provably did not reach the server.
        cls = APITimeoutError if isinstance(exc, TimeoutError) else APIConnectionError
        return cls(
            f"could not connect: {describe(exc)}", method=method, url=shown, connect_failed=True
        )
    timed_out = isinstance(exc, TimeoutError)
    what = "timed out" if timed_out else f"connection failed: {describe(exc)}"
    if creates:
        lost = RequestMayHaveSucceededTimeoutError if timed_out else RequestMayHaveSucceededError
        return lost(
            f"the request {what} after it was sent; the server may have created the "
            "resource, so it was not retried (list recent predictions or trainings to check)",
            method=method,
            url=shown,
        )
    cls = APITimeoutError if timed_out else APIConnectionError
    return cls(what, method=method, url=shown)


def redact(exc: BaseException) -> None:
    """Blank the token in aiohttp's copy of the request headers kept by an error chain.

    ``ClientResponseError`` (a malformed or unexpected response) holds ``request_info``,
    whose repr shows every header sent: chained under our error, it would print the token.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        info = getattr(current, "request_info", None)
        if isinstance(info, aiohttp.RequestInfo) and "Authorization" in info.headers:
            headers = CIMultiDict(info.headers)
            headers["Authorization"] = "<redacted>"
            clean = aiohttp.RequestInfo(
                info.url, info.method, CIMultiDictProxy(headers), info.real_url
            )
            current.request_info = clean  # type: ignore[attr-defined]
            current.args = tuple(clean if arg is info else arg for arg in current.args)
        current = current.__cause__ or current.__context__


def safe_url(url: str) -> str:
    """The URL without its query string (which may hold signatures) for messages."""
    return url.split("?", 1)[0]


def describe(exc: BaseException) -> str:
    """A short text for an exception: its message (at most 300 characters) or its type."""
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."


#: Phrases Python 3.13 renamed after RFC 9110 ("Unprocessable Content"...), pinned to the
#: names 3.11 and 3.12 give, so that a message does not depend on the Python running it.
_PHRASES: Final = {
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    416: "Requested Range Not Satisfiable",
    422: "Unprocessable Entity",
}


def reason(status: int) -> str:
    """The standard reason phrase of an HTTP status (``"HTTP 599"`` when unknown)."""
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
