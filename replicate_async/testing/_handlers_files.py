"""Handlers: the Files API (uploads are held once, in the request's own buffer) and the
output files of fake predictions (``/delivery/...``)."""

from __future__ import annotations

import email.parser
import hashlib
import hmac
from dataclasses import dataclass
from email.message import Message
from typing import Any

from aiohttp import web

from ._behaviours import PNG_BYTES
from ._body import body_of, check_json_value, file_too_large, parse_json
from ._context import CTX, Context
from ._records import FileObject
from ._sse import serve_stream
from ._util import ApiError, json_response, not_found, problem

__all__ = ["Part", "parse_multipart", "routes"]

JSON = dict[str, Any]


@dataclass(slots=True)
class Part:
    """One multipart/form-data part; ``data`` is a view into the request body (no copy)."""

    name: str
    filename: str | None
    content_type: str | None
    data: memoryview


def _boundary(content_type: str) -> bytes:
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ValueError("not multipart/form-data")
    return boundary.encode()


def parse_multipart(body: bytes | bytearray, content_type: str) -> dict[str, Part]:
    """Parse a multipart/form-data body already in memory (first part of each name wins).

    Raises :class:`ValueError` (or :class:`UnicodeError`) on a malformed body.
    """
    delimiter = b"--" + _boundary(content_type)
    view = memoryview(body)
    parts: dict[str, Part] = {}
    parser = email.parser.HeaderParser()
    pos = body.find(delimiter)
    while pos != -1:
        start = pos + len(delimiter)
        if body[start : start + 2] == b"--":
            break
        end = body.find(b"\r\n" + delimiter, start)
        if end == -1:
            break
        pos = end + 2
        if body[start : start + 2] == b"\r\n":
            start += 2
        head_end = body.find(b"\r\n\r\n", start, end)
        if head_end == -1:
            continue
        headers = parser.parsestr(bytes(view[start:head_end]).decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in parts:
            continue
        part_type = headers.get_content_type() if "content-type" in headers else None
        parts[name] = Part(name, headers.get_filename(), part_type, view[head_end + 4 : end])
    return parts


def _bad(detail: str) -> ApiError:
    return ApiError(problem(400, detail))


def _text_field(parts: dict[str, Part], name: str) -> str | None:
    part = parts.get(name)
    if part is None:
        return None
    try:
        return bytes(part.data).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{name} must be UTF-8 text") from None


def _metadata(parts: dict[str, Part], max_depth: int) -> JSON:
    part = parts.get("metadata")
    if part is None:
        return {}
    try:
        metadata = parse_json(part.data, max_depth) if len(part.data) else {}
    except ApiError:
        metadata = None
    if not isinstance(metadata, dict):
        raise _bad("metadata must be a JSON object")
    return metadata


def _upload(ctx: Context, parts: dict[str, Part]) -> FileObject:
    content = parts.get("content")
    if content is None:
        raise _bad('The "content" field is required')
    if len(content.data) > ctx.options.max_file_size:
        raise ApiError(file_too_large(ctx.options.max_file_size))
    metadata = _metadata(parts, ctx.options.max_json_depth)
    name = _text_field(parts, "filename") or content.filename or "file"
    if len(name.encode("utf-8", "surrogatepass")) > 255:
        raise _bad("filename must be at most 255 bytes")
    content_type = _text_field(parts, "type")
    content_type = (content_type or "").strip() or content.content_type
    content_type = content_type or "application/octet-stream"
    if check_json_value([name, content_type], 2) is not None:
        raise _bad("filename and type must be valid Unicode text")
    return FileObject(
        id=ctx.store.ids.new_id(),
        name=name,
        content_type=content_type,
        content=content.data,
        sha256=hashlib.sha256(content.data).hexdigest(),
        md5=hashlib.md5(content.data).hexdigest(),
        metadata=metadata,
        created_ns=ctx.now_ns(),
    )


async def create_file(request: web.Request) -> web.Response:
    """POST /v1/files [files.create]: multipart with ``content`` (+ filename/type/metadata)."""
    ctx = request.app[CTX]
    try:
        parts = parse_multipart(body_of(request), request.headers.get("Content-Type", ""))
    except (ValueError, LookupError, IndexError, TypeError):
        raise _bad("The request body must be multipart/form-data") from None
    file = _upload(ctx, parts)
    ctx.store.add_file(file)
    return json_response(file.to_json(ctx.origin), 201)


def _file_not_found() -> ApiError:
    return ApiError(problem(404, "File not found", include_status=False))


def _file_or_404(ctx: Context, request: web.Request) -> FileObject:
    file = ctx.store.files.get(request.match_info["file_id"])
    if file is None:
        raise _file_not_found()
    return file


async def list_files(request: web.Request) -> web.Response:
    """GET /v1/files [files.list]"""
    ctx = request.app[CTX]
    origin = ctx.origin
    return ctx.page(request, ctx.store.files_index, lambda f: f.to_json(origin))


async def get_file(request: web.Request) -> web.StreamResponse:
    """GET /v1/files/{file_id} [files.get]; ``fstream-*`` ids are file-output SSE streams."""
    ctx = request.app[CTX]
    file_id = request.match_info["file_id"]
    if file_id.startswith("fstream-"):
        prediction = ctx.store.predictions.get(file_id.removeprefix("fstream-"))
        if prediction is None or prediction.stream_kind != "file":
            raise ApiError(not_found())
        return await serve_stream(request, prediction, ctx.runner)
    return json_response(_file_or_404(ctx, request).to_json(ctx.origin))


async def delete_file(request: web.Request) -> web.Response:
    """DELETE /v1/files/{file_id} [files.delete]: 204; the content is freed."""
    ctx = request.app[CTX]
    ctx.store.remove_file(_file_or_404(ctx, request))
    return web.Response(status=204)


async def download_file(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}/download [files.download]: checks the signed query."""
    ctx = request.app[CTX]
    file = _file_or_404(ctx, request)
    owner = request.query.get("owner", "")
    signature = request.query.get("signature", "").encode("utf-8", "surrogatepass")
    try:
        expiry = int(request.query.get("expiry", ""))
    except ValueError:
        raise _file_not_found() from None
    expected = ctx.file_signature(owner, file.id, expiry).encode()
    if (
        owner != ctx.store.account["username"]
        or expiry < ctx.clock()
        or not hmac.compare_digest(expected, signature)
    ):
        raise _file_not_found()
    return web.Response(body=file.content, content_type="application/octet-stream")


async def delivery(request: web.Request) -> web.Response:
    """GET /delivery/{id}/{name}: output files of fake predictions (no auth, like the CDN)."""
    ctx = request.app[CTX]
    owner_id, name = request.match_info["id"], request.match_info["name"]
    if ctx.store.predictions.get(owner_id) is not None and name.endswith(".png"):
        return web.Response(body=PNG_BYTES, content_type="image/png")
    if ctx.store.trainings.get(owner_id) is not None and name == "weights.tar":
        return web.Response(body=b"fake weights\n", content_type="application/x-tar")
    raise ApiError(not_found())


def routes() -> list[web.RouteDef]:
    """The route table for this module."""
    return [
        web.get("/v1/files", list_files),
        web.post("/v1/files", create_file),
        web.get("/v1/files/{file_id}", get_file),
        web.delete("/v1/files/{file_id}", delete_file),
        web.get("/v1/files/{file_id}/download", download_file),
        web.get("/delivery/{id}/{name}", delivery),
    ]
