"""A fully read response, and the one way a body becomes a typed object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, overload

from multidict import CIMultiDictProxy

from .._converter import StructureError, loads, structure
from ..exceptions import APIResponseValidationError
from .errors import MAX_ERROR_TEXT, safe_url

__all__ = ["Response", "decode"]

T = TypeVar("T")

#: Every way a JSON decoder (orjson or the standard library) rejects a hostile body:
#: syntax, NaN, huge numbers (``ValueError``), nesting (``RecursionError``), overflow.
_DECODE_ERRORS = (ValueError, RecursionError, OverflowError, TypeError)


class Response(NamedTuple):
    """A fully read HTTP response (immutable; a tuple: made once per request, cheaply)."""

    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    content: bytes

    def json(self) -> Any:
        """The body decoded as JSON, or :class:`APIResponseValidationError`."""
        try:
            return loads(self.content)
        except _DECODE_ERRORS as exc:
            raise self._invalid(
                "the response body is not valid JSON",
                self.content[:MAX_ERROR_TEXT].decode(errors="replace"),
            ) from exc

    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode(errors="replace")

    def _invalid(self, message: str, body: Any) -> APIResponseValidationError:
        return APIResponseValidationError(
            message, method=self.method, url=safe_url(self.url), status=self.status, body=body
        )


@overload
def decode(response: Response, into: type[T]) -> T: ...
@overload
def decode(response: Response, into: Callable[[Any], T]) -> T: ...
def decode(response: Response, into: Any) -> Any:
    """Decode a response body into ``into``: a model class (built by the converter) or a
    function building the object from the decoded JSON. Any failure, of the JSON or of its
    shape, is an :class:`APIResponseValidationError`."""
    data = response.json()
    try:
        return structure(data, into) if isinstance(into, type) else into(data)
    except (StructureError, RecursionError, OverflowError) as exc:
        raise response._invalid(f"unexpected response shape: {exc}", data) from exc
