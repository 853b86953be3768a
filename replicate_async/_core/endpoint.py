"""Any endpoint, typed by the caller: ``client.get/post/patch/delete(path, cast_to=...)``.

For an operation the SDK does not wrap yet. It is an operation like the resources' own: the
path is relative to the API base URL and checked segment by segment (it can never name
another host or climb out of the base path, so the token only goes where it always goes),
and the request takes the one request path (options, limiter, retries that are safe, error
mapping, decoding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import NoneType
from typing import Any, Final, TypeVar, overload

from .._checks import body as check_body
from .._checks import url as check_url
from ..exceptions import InvalidArgumentError
from .http import HTTPCore, path
from .options import RequestOptions, RequestOptionsDict, call_options
from .response import Response, decode

__all__ = ["METHODS", "call_endpoint", "relative_path"]

T = TypeVar("T")

#: The methods a caller may send this way.
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PLAIN_CASTS: Final = (bytes, str, object, Any, None, NoneType)


def relative_path(value: Any) -> str:
    """A path relative to the API base (``"predictions"``, ``"/models/a/b/versions"``),
    each segment checked and percent-encoded; never absolute, never with a query."""
    if not isinstance(value, str):
        raise TypeError(f"path must be a string, got {type(value).__name__}")
    if "://" in value or value.startswith("//"):
        raise InvalidArgumentError(
            "path must be relative to the API base URL (e.g. 'predictions'), not a URL"
        )
    if "?" in value or "#" in value:
        raise InvalidArgumentError("path must not carry a query or fragment: pass query=")
    segments = value.strip("/").split("/")
    if segments == [""]:
        raise InvalidArgumentError("path must name an endpoint, e.g. 'predictions'")
    return path(*(check_url.segment(s, f"path segment {s!r:.40}") for s in segments))


@overload
async def call_endpoint(
    http: HTTPCore,
    method: str,
    target: str,
    cast_to: type[T],
    body: Any,
    query: Mapping[str, str] | None,
    options: RequestOptionsDict,
) -> T: ...
@overload
async def call_endpoint(
    http: HTTPCore,
    method: str,
    target: str,
    cast_to: Callable[[Any], T],
    body: Any,
    query: Mapping[str, str] | None,
    options: RequestOptionsDict,
) -> T: ...
async def call_endpoint(
    http: HTTPCore,
    method: str,
    target: str,
    cast_to: Any,
    body: Any,
    query: Mapping[str, str] | None,
    options: RequestOptionsDict,
) -> Any:
    """Send ``method`` to ``target`` and return the body as ``cast_to`` says.

    ``cast_to``: a model class (built by the converter; a bad shape is an
    :class:`APIResponseValidationError`), a function of the decoded JSON, ``object``
    (the decoded JSON as is; ``None`` for an empty body), ``str`` (the text) or ``bytes``.
    ``body``: a JSON-serialisable mapping or list (sent as JSON), ``bytes`` (as is) or
    ``None``. A ``POST`` is never resent once it may have reached the server.
    """
    method = method.upper() if isinstance(method, str) else method
    if not (cast_to in _PLAIN_CASTS or callable(cast_to)):
        raise TypeError(f"cast_to must be a type or a function, got {cast_to!r:.60}")
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    relative = relative_path(target)
    params = _query(query)
    content, headers = _body(body)
    via = http.with_options(call_options(options)) if options else http
    response = await via.request(method, relative, params=params, content=content, headers=headers)
    return _cast(response, cast_to)


def _query(query: Any) -> Mapping[str, str] | None:
    """Query parameters, checked as a call's ``extra_query`` is."""
    return None if query is None else RequestOptions(extra_query=query).extra_query


def _body(body: Any) -> tuple[bytes | None, dict[str, str] | None]:
    if body is None:
        return None, None
    if isinstance(body, bytes | bytearray):
        return bytes(body), None
    if isinstance(body, Mapping | list):
        return check_body.json_body(body), {"Content-Type": "application/json"}  # type: ignore[arg-type]
    raise TypeError(f"body must be a mapping, a list, bytes or None, got {type(body).__name__}")


def _cast(response: Response, cast_to: Any) -> Any:
    if cast_to is bytes:
        return response.content
    if cast_to is str:
        return response.text()
    if cast_to is object or cast_to is Any:
        return response.json() if response.content.strip() else None
    if cast_to is None or cast_to is NoneType:
        return None
    return decode(response, cast_to)
