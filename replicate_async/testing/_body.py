"""Request bodies, read once: bounded in size and time, checked before anything is stored.

The middleware reads every body with :func:`read_body` and leaves it on the request; the
handlers get it back with :func:`body_of`, :func:`read_json` or :func:`read_object`.
Small bodies go through ``request.read()`` (so inner middlewares can read them too);
large ones stream into one buffer that grows as bytes arrive (never sized from the
declared ``Content-Length``, which costs a client nothing to claim: 30 connections
declaring 100 MB each must not reserve 3 GB), so an upload is held in memory once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from ._context import CTX
from ._keys import BODY
from ._util import ApiError, check_json_value, problem
from ._validation import invalid_fields_response, validate

__all__ = [
    "Body",
    "body_of",
    "check_json_value",
    "file_too_large",
    "read_body",
    "read_json",
    "read_object",
]

JSON = dict[str, Any]

#: What reading a payload raises on a broken stream or Content-Encoding.
_PAYLOAD_ERRORS = (RequestPayloadError, HttpProcessingError, ValueError)
#: Bodies up to this size are read with ``request.read()``; larger ones are streamed.
SMALL_BODY = 1024 * 1024


@dataclass(slots=True)
class Body:
    """A request body: the bytes (a ``bytearray`` when streamed), size and SHA-256."""

    data: bytes | bytearray
    sha256: str

    @property
    def size(self) -> int:
        """The length in bytes."""
        return len(self.data)


def file_too_large(max_size: int) -> web.Response:
    """The 413 problem for an oversized upload."""
    mb = 1024 * 1024
    size = f"{max_size // mb}MB" if max_size % mb == 0 else f"{max_size} bytes"
    return problem(413, f"Files must be less than {size} in size", include_status=False)


def _bad_body(status: int, detail: str) -> ApiError:
    return ApiError(problem(status, detail, title="Invalid request body"))


async def read_body(request: web.Request, *, limit: int, timeout: float) -> Body:
    """Read the whole body (at most ``limit`` bytes, within ``timeout`` seconds).

    Raises :class:`ApiError` with a 408 (stalled), 413 (too large) or 400 (a broken
    ``Content-Encoding``) problem.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ApiError(file_too_large(limit))
    try:
        async with asyncio.timeout(timeout):
            if declared is not None and declared <= SMALL_BODY:
                data: bytes | bytearray = await request.read()
            else:
                data = await _stream(request, limit)
    except TimeoutError:
        raise _bad_body(408, "The request body did not arrive in time") from None
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(file_too_large(limit)) from None
    except _PAYLOAD_ERRORS as exc:
        detail = "The request body could not be read"
        if "encoding" in str(exc).lower():
            detail = "The request body could not be decoded (Content-Encoding)"
        raise _bad_body(400, detail) from None
    if len(data) > limit:
        raise ApiError(file_too_large(limit))
    return Body(data, hashlib.sha256(data).hexdigest())


async def _stream(request: web.Request, limit: int) -> bytearray:
    # The declared length is only a claim: the buffer holds what arrived, never what was
    # promised (a declared size over the limit was refused before reading).
    buffer = bytearray()
    while chunk := await request.content.readany():
        size = len(buffer) + len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        buffer += chunk
    return buffer


def body_of(request: web.Request) -> bytes | bytearray:
    """The body the middleware read (empty if none)."""
    body: Body | None = request.get(BODY)
    return body.data if body is not None else b""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes | bytearray | memoryview, max_depth: int) -> Any:
    """Parse JSON text strictly (no NaN/Infinity, no lone surrogates, bounded depth)."""
    try:
        text = raw if isinstance(raw, (bytes, bytearray)) else bytes(raw)
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _bad_body(400, f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise _bad_body(400, "The request body is not valid JSON") from None
    reason = check_json_value(value, max_depth)
    if reason is not None:
        raise _bad_body(400, f"The request body is not acceptable JSON: {reason}")
    return value


async def read_json(request: web.Request) -> Any:
    """The request body as JSON (``None`` when empty), or a 400 problem."""
    raw = body_of(request)
    return parse_json(raw, request.app[CTX].options.max_json_depth) if raw else None


async def read_object(request: web.Request, schema: JSON, *, required: bool = True) -> JSON:
    """The body as a JSON object valid against ``schema`` (an empty body is ``{}`` unless
    ``required``), or a 400/422 problem."""
    body = await read_json(request)
    if body is None and not required:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(problem(400, "The request body must be a JSON object"))
    errors = validate(body, schema)
    if errors:
        raise ApiError(invalid_fields_response(errors))
    return body
