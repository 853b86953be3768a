"""Handlers: models, versions, examples, readmes, collections and search."""

from __future__ import annotations

import math
import re
from typing import Any

from aiohttp import web

from ._body import body_of, read_object
from ._context import CTX, Context
from ._pagination import SortedIndex
from ._records import Model
from ._util import ApiError, json_response, not_found, problem

__all__ = ["routes"]

JSON = dict[str, Any]

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$")
_MAX_MODELS_PER_ACCOUNT = 1000

MODEL_CREATE_BODY: JSON = {
    "type": "object",
    "required": ["owner", "name", "visibility", "hardware"],
    "properties": {
        "owner": {"type": "string"},
        "name": {"type": "string"},
        "visibility": {"type": "string", "enum": ["public", "private"]},
        "hardware": {"type": "string"},
        "description": {"type": "string"},
        "github_url": {"type": "string"},
        "paper_url": {"type": "string"},
        "license_url": {"type": "string"},
        "cover_image_url": {"type": "string"},
    },
}
_UPDATABLE = ("description", "readme", "github_url", "paper_url", "weights_url", "license_url")
MODEL_UPDATE_BODY: JSON = {
    "type": "object",
    "properties": {key: {"type": "string"} for key in _UPDATABLE},
}


def _forbidden(detail: str) -> ApiError:
    return ApiError(problem(403, detail))


def _own(ctx: Context, model: Model) -> None:
    if model.owner != ctx.store.account["username"]:
        raise _forbidden("You do not have permission to modify this model")


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models [models.list]"""
    ctx = request.app[CTX]
    sort_by = request.query.get("sort_by", "latest_version_created_at")
    direction = request.query.get("sort_direction", "desc")
    if sort_by not in ("model_created_at", "latest_version_created_at"):
        raise ApiError(
            problem(400, "sort_by must be model_created_at or latest_version_created_at")
        )
    if direction not in ("asc", "desc"):
        raise ApiError(problem(400, "sort_direction must be asc or desc"))
    store = ctx.store
    index = store.models_by_created if sort_by == "model_created_at" else store.models_by_latest
    origin = ctx.origin
    return ctx.page(
        request,
        index,
        lambda item: store.resolve_model(item).to_json(origin),
        descending=direction == "desc",
    )


def _visible(ctx: Context, model: Model) -> bool:
    return model.visibility == "public" or model.owner == ctx.store.account["username"]


def _search_models(ctx: Context, query: str) -> list[tuple[float, Model]]:
    words = [w for w in re.split(r"[\s/]+", query.lower()) if w]
    found: list[tuple[float, Model]] = []
    for model in ctx.store.models.values():
        if not _visible(ctx, model):
            continue
        text = " ".join([model.full_name, model.description or "", *model.tags]).lower()
        hits = sum(1 for w in words if w in text)
        if words and hits:
            found.append((hits / len(words) + math.log10(model.run_count + 1) / 100, model))
    found.sort(key=lambda pair: -pair[0])
    return found


async def search_models(request: web.Request) -> web.Response:
    """QUERY /v1/models [models.search]: the raw text/plain body is the query."""
    ctx = request.app[CTX]
    query = bytes(body_of(request)).decode("utf-8", "replace").strip()
    index: SortedIndex[Model] = SortedIndex()
    for position, (_, model) in enumerate(_search_models(ctx, query)):
        index.add(position, model)
    origin = ctx.origin
    return ctx.page(request, index, lambda m: m.to_json(origin), descending=False)


async def create_model(request: web.Request) -> web.Response:
    """POST /v1/models [models.create]"""
    ctx = request.app[CTX]
    body = await read_object(request, MODEL_CREATE_BODY, required=False)
    username = ctx.store.account["username"]
    if body["owner"] != username:
        raise _forbidden(f"You can only create models owned by {username}")
    if not _NAME_RE.match(body["name"]):
        detail = (
            "Model names may only contain lowercase letters, digits, dashes, underscores and dots"
        )
        raise ApiError(problem(400, detail))
    if body["hardware"] not in {h["sku"] for h in ctx.store.hardware}:
        raise ApiError(problem(400, f"Invalid hardware SKU {body['hardware']!r}"))
    full = f"{username}/{body['name']}"
    if full in ctx.store.models:
        raise ApiError(problem(409, f"A model named {full} already exists"))
    if sum(1 for m in ctx.store.models.values() if m.owner == username) >= _MAX_MODELS_PER_ACCOUNT:
        raise ApiError(problem(400, "You have reached the maximum of 1000 models"))
    model = Model(
        owner=username,
        name=body["name"],
        kind="echo",
        created_ns=ctx.now_ns(),
        description=body.get("description"),
        visibility=body["visibility"],
        github_url=body.get("github_url"),
        paper_url=body.get("paper_url"),
        license_url=body.get("license_url"),
        cover_image_url=body.get("cover_image_url"),
    )
    ctx.store.add_model(model)
    return json_response(model.to_json(ctx.origin), 201)


async def get_model(request: web.Request) -> web.Response:
    """GET /v1/models/{owner}/{name} [models.get]"""
    ctx = request.app[CTX]
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    return json_response(model.to_json(ctx.origin))


async def update_model(request: web.Request) -> web.Response:
    """PATCH /v1/models/{owner}/{name} [models.update]"""
    ctx = request.app[CTX]
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    _own(ctx, model)
    body = await read_object(request, MODEL_UPDATE_BODY, required=False)
    for key in _UPDATABLE:
        if key in body:
            setattr(model, key, body[key])
    return json_response(model.to_json(ctx.origin))


async def delete_model(request: web.Request) -> web.Response:
    """DELETE /v1/models/{owner}/{name} [models.delete]"""
    ctx = request.app[CTX]
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    _own(ctx, model)
    if model.visibility != "private":
        raise ApiError(problem(409, "Only private models can be deleted"))
    if len(model.versions):
        raise ApiError(problem(409, "Delete this model's versions before deleting the model"))
    ctx.store.remove_model(model)
    return web.Response(status=204)


async def list_examples(request: web.Request) -> web.Response:
    """GET /v1/models/{owner}/{name}/examples [models.examples.list]"""
    ctx = request.app[CTX]
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    index: SortedIndex[Any] = SortedIndex()
    if model.default_example is not None:
        index.add(0, model.default_example)
    origin = ctx.origin
    return ctx.page(request, index, lambda p: p.to_json(origin))


async def get_readme(request: web.Request) -> web.Response:
    """GET /v1/models/{owner}/{name}/readme [models.readme.get]: text/plain markdown."""
    ctx = request.app[CTX]
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    if not model.readme:
        raise ApiError(not_found("This model has no README"))
    return web.Response(text=model.readme, content_type="text/plain")


async def list_versions(request: web.Request) -> web.Response:
    """GET /v1/models/{owner}/{name}/versions [models.versions.list]"""
    ctx = request.app[CTX]
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    return ctx.page(request, model.versions, lambda v: v.to_json())


def _version(ctx: Context, request: web.Request) -> tuple[Model, Any]:
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    version = ctx.store.get_version(request.match_info["version_id"])
    if version is None or version.model != model.full_name:
        raise ApiError(not_found())
    return model, version


async def get_version(request: web.Request) -> web.Response:
    """GET /v1/models/{owner}/{name}/versions/{version_id} [models.versions.get]"""
    ctx = request.app[CTX]
    _, version = _version(ctx, request)
    return json_response(version.to_json())


async def delete_version(request: web.Request) -> web.Response:
    """DELETE /v1/models/{owner}/{name}/versions/{version_id} [models.versions.delete]: 202."""
    ctx = request.app[CTX]
    model, version = _version(ctx, request)
    _own(ctx, model)
    if model.visibility != "private":
        raise ApiError(problem(409, "Versions of public models cannot be deleted"))
    if any(d.version == version.id for d in ctx.store.deployments.values()):
        raise ApiError(problem(409, "This version is used by a deployment"))
    ctx.store.remove_version(model, version)
    return web.Response(status=202)


async def list_collections(request: web.Request) -> web.Response:
    """GET /v1/collections [collections.list]"""
    ctx = request.app[CTX]
    return ctx.page(request, ctx.store.collections_index, lambda c: c.summary(), descending=False)


async def get_collection(request: web.Request) -> web.Response:
    """GET /v1/collections/{slug} [collections.get]"""
    ctx = request.app[CTX]
    collection = ctx.store.collections.get(request.match_info["slug"])
    if collection is None:
        raise ApiError(not_found())
    models = [ctx.store.get_model(name) for name in collection.models]
    body = {
        **collection.summary(),
        "full_description": collection.full_description,
        "models": [m.to_json(ctx.origin) for m in models if m is not None],
    }
    return json_response(body)


def _search_error(status: int, detail: str) -> ApiError:
    return ApiError(problem(status, detail, include_status=False, content_type="application/json"))


async def search(request: web.Request) -> web.Response:
    """GET /v1/search [search] (beta; no auth). Errors are plain application/json."""
    ctx = request.app[CTX]
    query = request.query.get("query", "").strip()
    if not query:
        raise _search_error(400, 'Query parameter "query" is required')
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise _search_error(400, 'Query parameter "limit" must be an integer') from None
    if not 1 <= limit <= 50:
        raise _search_error(400, 'Query parameter "limit" must be between 1 and 50')
    words = [w for w in query.lower().split() if w]
    models = [
        {
            "model": model.to_json(ctx.origin),
            "metadata": {
                "generated_description": model.description,
                "tags": list(model.tags),
                "score": round(score, 6),
            },
        }
        for score, model in _search_models(ctx, query)[:limit]
    ]
    collections = [
        {
            "name": c.name,
            "slug": c.slug,
            "description": c.description,
            "models": list(c.models) or None,
        }
        for c in ctx.store.collections.values()
        if any(w in f"{c.name} {c.slug} {c.description}".lower() for w in words)
    ][:limit]
    pages = [
        page
        for page in ctx.store.search_pages
        if any(w in f"{page['name']} {page['href']}".lower() for w in words)
    ][:limit]
    body = {"query": query, "models": models, "collections": collections, "pages": pages}
    return json_response(body)


def routes() -> list[web.RouteDef]:
    """The route table for this module."""
    model = "/v1/models/{owner}/{name}"
    return [
        web.get("/v1/models", list_models),
        web.route("QUERY", "/v1/models", search_models),
        web.post("/v1/models", create_model),
        web.get(model, get_model),
        web.patch(model, update_model),
        web.delete(model, delete_model),
        web.get(f"{model}/examples", list_examples),
        web.get(f"{model}/readme", get_readme),
        web.get(f"{model}/versions", list_versions),
        web.get(f"{model}/versions/{{version_id}}", get_version),
        web.delete(f"{model}/versions/{{version_id}}", delete_version),
        web.get("/v1/collections", list_collections),
        web.get("/v1/collections/{slug}", get_collection),
        web.get("/v1/search", search),
    ]
