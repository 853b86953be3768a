"""Handlers: account, hardware, webhook secret, deployments, files and output files."""

from __future__ import annotations

import email.parser
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

from aiohttp import web

from ._context import CTX, Context
from ._handlers_predictions import read_json
from ._models import PNG_BYTES
from ._records import Deployment, FileObject
from ._sse import serve_stream
from ._util import ApiError, json_response, new_id, not_found, problem
from ._validation import invalid_fields_response, validate

__all__ = ["file_too_large", "parse_multipart", "routes"]

JSON = dict[str, Any]

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?$")
_INSTANCES = {
    "min_instances": {"type": "integer", "minimum": 0, "maximum": 5},
    "max_instances": {"type": "integer", "minimum": 0, "maximum": 20},
}
DEPLOYMENT_CREATE_BODY: JSON = {
    "type": "object",
    "required": ["name", "model", "version", "hardware", "min_instances", "max_instances"],
    "properties": {
        "name": {"type": "string"},
        "model": {"type": "string"},
        "version": {"type": "string"},
        "hardware": {"type": "string"},
        **_INSTANCES,
    },
}
DEPLOYMENT_UPDATE_BODY: JSON = {
    "type": "object",
    "properties": {"hardware": {"type": "string"}, "version": {"type": "string"}, **_INSTANCES},
}


async def get_account(request: web.Request) -> web.Response:
    """GET /v1/account [account.get]"""
    return json_response(request.app[CTX].store.account)


async def list_hardware(request: web.Request) -> web.Response:
    """GET /v1/hardware [hardware.list]: a bare array, not a page."""
    return json_response(request.app[CTX].store.hardware)


async def get_webhook_secret(request: web.Request) -> web.Response:
    """GET /v1/webhooks/default/secret [webhooks.default.secret.get]"""
    return json_response({"key": request.app[CTX].options.webhook_secret})


# ------------------------------------------------------------------------ deployments


async def _body(request: web.Request, schema: JSON) -> JSON:
    body = await read_json(request)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(problem(400, "The request body must be a JSON object"))
    errors = validate(body, schema)
    if errors:
        raise ApiError(invalid_fields_response(errors))
    return body


def _check_hardware(ctx: Context, sku: str) -> None:
    if sku not in {h["sku"] for h in ctx.store.hardware}:
        raise ApiError(problem(400, f"Invalid hardware SKU {sku!r}"))


def _check_instances(min_instances: int, max_instances: int) -> None:
    if min_instances > max_instances:
        raise ApiError(problem(400, "min_instances must not be greater than max_instances"))


def _deployment_or_404(ctx: Context, request: web.Request) -> Deployment:
    full = f"{request.match_info['owner']}/{request.match_info['name']}"
    deployment = ctx.store.deployments.get(full)
    if deployment is None:
        raise ApiError(not_found())
    return deployment


async def list_deployments(request: web.Request) -> web.Response:
    """GET /v1/deployments [deployments.list]"""
    ctx = request.app[CTX]
    return ctx.page(request, ctx.store.deployments_index, lambda d: d.to_json())


async def create_deployment(request: web.Request) -> web.Response:
    """POST /v1/deployments [deployments.create]: 200, as the spec says."""
    ctx = request.app[CTX]
    body = await _body(request, DEPLOYMENT_CREATE_BODY)
    if not _NAME_RE.match(body["name"]):
        raise ApiError(problem(400, "Invalid deployment name"))
    model = ctx.store.get_model(body["model"])
    version = ctx.store.get_version(body["version"])
    if model is None or version is None or version.model != model.full_name:
        raise ApiError(
            problem(
                422,
                "The specified version does not exist (or perhaps you don't have permission "
                "to use it?)",
                title="Invalid version or not permitted",
            )
        )
    _check_hardware(ctx, body["hardware"])
    _check_instances(body["min_instances"], body["max_instances"])
    owner = ctx.store.account["username"]
    if f"{owner}/{body['name']}" in ctx.store.deployments:
        raise ApiError(problem(409, f"A deployment named {owner}/{body['name']} already exists"))
    deployment = Deployment(
        owner=owner,
        name=body["name"],
        model=model.full_name,
        version=version.id,
        hardware=body["hardware"],
        min_instances=body["min_instances"],
        max_instances=body["max_instances"],
        number=1,
        release_ns=ctx.now_ns(),
        created_by=ctx.store.account,
    )
    ctx.store.add_deployment(deployment)
    return json_response(deployment.to_json())


async def get_deployment(request: web.Request) -> web.Response:
    """GET /v1/deployments/{owner}/{name} [deployments.get]"""
    ctx = request.app[CTX]
    return json_response(_deployment_or_404(ctx, request).to_json())


async def update_deployment(request: web.Request) -> web.Response:
    """PATCH /v1/deployments/{owner}/{name} [deployments.update]: bumps the release number."""
    ctx = request.app[CTX]
    deployment = _deployment_or_404(ctx, request)
    body = await _body(request, DEPLOYMENT_UPDATE_BODY)
    if "version" in body:
        version = ctx.store.get_version(body["version"])
        if version is None or version.model != deployment.model:
            raise ApiError(
                problem(422, "The specified version does not exist", title="Invalid version")
            )
    if "hardware" in body:
        _check_hardware(ctx, body["hardware"])
    _check_instances(
        body.get("min_instances", deployment.min_instances),
        body.get("max_instances", deployment.max_instances),
    )
    changed = False
    for key in ("hardware", "min_instances", "max_instances", "version"):
        if key in body and getattr(deployment, key) != body[key]:
            setattr(deployment, key, body[key])
            changed = True
    if changed:
        deployment.number += 1
        deployment.release_ns = ctx.now_ns()
    return json_response(deployment.to_json())


async def delete_deployment(request: web.Request) -> web.Response:
    """DELETE /v1/deployments/{owner}/{name} [deployments.delete]: 204."""
    ctx = request.app[CTX]
    ctx.store.remove_deployment(_deployment_or_404(ctx, request))
    return web.Response(status=204)


# ------------------------------------------------------------------------------ files


@dataclass(slots=True)
class Part:
    """One multipart/form-data part."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """Parse a multipart/form-data body already in memory (first part of each name wins)."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ValueError("not multipart/form-data")
    parts: dict[str, Part] = {}
    parser = email.parser.HeaderParser()
    for section in body.split(b"--" + boundary.encode())[1:]:
        if section.startswith(b"--"):
            break
        head, sep, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = parser.parsestr(head.decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in parts:
            continue
        part_type = headers.get_content_type() if "content-type" in headers else None
        parts[name] = Part(name, headers.get_filename(), part_type, data.removesuffix(b"\r\n"))
    return parts


def file_too_large(max_size: int) -> web.Response:
    """The 413 problem for an oversized upload."""
    mb = 1024 * 1024
    size = f"{max_size // mb}MB" if max_size % mb == 0 else f"{max_size} bytes"
    return problem(413, f"Files must be less than {size} in size", include_status=False)


def _file_not_found() -> ApiError:
    return ApiError(problem(404, "File not found", include_status=False))


async def list_files(request: web.Request) -> web.Response:
    """GET /v1/files [files.list]"""
    ctx = request.app[CTX]
    origin = ctx.origin
    return ctx.page(request, ctx.store.files_index, lambda f: f.to_json(origin))


async def create_file(request: web.Request) -> web.Response:
    """POST /v1/files [files.create]: multipart with ``content`` (+ filename/type/metadata)."""
    ctx = request.app[CTX]
    body = await request.read()
    try:
        parts = parse_multipart(body, request.headers.get("Content-Type", ""))
    except ValueError:
        raise ApiError(problem(400, "The request body must be multipart/form-data")) from None
    content = parts.get("content")
    if content is None:
        raise ApiError(problem(400, 'The "content" field is required'))
    if len(content.data) > ctx.options.max_file_size:
        raise ApiError(file_too_large(ctx.options.max_file_size))
    metadata: Any = {}
    if "metadata" in parts:
        try:
            metadata = json.loads(parts["metadata"].data or b"{}")
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            raise ApiError(problem(400, "metadata must be a JSON object"))
    name = parts["filename"].data.decode() if "filename" in parts else content.filename or "file"
    if len(name.encode()) > 255:
        raise ApiError(problem(400, "filename must be at most 255 bytes"))
    if "type" in parts:
        content_type = parts["type"].data.decode().strip()
    else:
        content_type = content.content_type or "application/octet-stream"
    file = FileObject(
        id=new_id(),
        name=name,
        content_type=content_type,
        content=content.data,
        sha256=hashlib.sha256(content.data).hexdigest(),
        md5=hashlib.md5(content.data).hexdigest(),
        metadata=metadata,
        created_ns=ctx.now_ns(),
    )
    ctx.store.add_file(file)
    return json_response(file.to_json(ctx.origin), 201)


def _file_or_404(ctx: Context, request: web.Request) -> FileObject:
    file = ctx.store.files.get(request.match_info["file_id"])
    if file is None:
        raise _file_not_found()
    return file


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
    """DELETE /v1/files/{file_id} [files.delete]: 204."""
    ctx = request.app[CTX]
    ctx.store.remove_file(_file_or_404(ctx, request))
    return web.Response(status=204)


async def download_file(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}/download [files.download]: checks the signed query."""
    ctx = request.app[CTX]
    file = _file_or_404(ctx, request)
    owner = request.query.get("owner", "")
    signature = request.query.get("signature", "")
    try:
        expiry = int(request.query.get("expiry", ""))
    except ValueError:
        raise _file_not_found() from None
    expected = ctx.file_signature(owner, file.id, expiry)
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
    deployment = "/v1/deployments/{owner}/{name}"
    return [
        web.get("/v1/account", get_account),
        web.get("/v1/hardware", list_hardware),
        web.get("/v1/webhooks/default/secret", get_webhook_secret),
        web.get("/v1/deployments", list_deployments),
        web.post("/v1/deployments", create_deployment),
        web.get(deployment, get_deployment),
        web.patch(deployment, update_deployment),
        web.delete(deployment, delete_deployment),
        web.get("/v1/files", list_files),
        web.post("/v1/files", create_file),
        web.get("/v1/files/{file_id}", get_file),
        web.delete("/v1/files/{file_id}", delete_file),
        web.get("/v1/files/{file_id}/download", download_file),
        web.get("/delivery/{id}/{name}", delivery),
    ]
