"""Handlers: deployments (their prediction creates live with the other creates)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ._body import read_object
from ._context import CTX, Context
from ._records import Deployment
from ._util import ApiError, json_response, not_found, problem

__all__ = ["routes"]

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
    body = await read_object(request, DEPLOYMENT_CREATE_BODY, required=False)
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
    body = await read_object(request, DEPLOYMENT_UPDATE_BODY, required=False)
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


def routes() -> list[web.RouteDef]:
    """The route table for this module."""
    deployment = "/v1/deployments/{owner}/{name}"
    return [
        web.get("/v1/deployments", list_deployments),
        web.post("/v1/deployments", create_deployment),
        web.get(deployment, get_deployment),
        web.patch(deployment, update_deployment),
        web.delete(deployment, delete_deployment),
    ]
