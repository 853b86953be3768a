"""Handlers: predictions, trainings, deployments' and models' prediction creates, streams."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ._body import read_object
from ._context import CTX, Context
from ._pagination import key_bound
from ._records import FakePrediction, Model, Version
from ._script import apply_scripts, before_start
from ._sse import serve_stream
from ._util import NS, ApiError, json_response, not_found, parse_ts, problem
from ._validation import (
    PREDICTION_BODY,
    VERSION_PREDICTION_BODY,
    input_schema,
    invalid_fields_response,
    validate,
)

__all__ = ["MAX_CANCEL_AFTER", "object_handlers", "routes"]

Handler = Callable[[web.Request], Awaitable[web.Response]]

JSON = dict[str, Any]

_PREFER_RE = re.compile(r"^wait(=([1-9]|[1-9][0-9]|60))?$")
_CANCEL_AFTER_RE = re.compile(
    r"^(?:(?P<bare>[0-9]+(?:\.[0-9]+)?)"
    r"|(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)s)?)$"
)
MAX_CANCEL_AFTER = 24 * 3600
"""The longest ``Cancel-After`` accepted, in seconds (a day); longer is a 400."""


@dataclass(slots=True)
class _Target:
    model: Model
    version: Version | None
    reported_model: str
    reported_version: str
    deployment: str | None = None


def invalid_version() -> ApiError:
    """The 422 for an unknown (or forbidden) version."""
    return ApiError(
        problem(
            422,
            "The specified version does not exist "
            "(or perhaps you don't have permission to use it?)",
            title="Invalid version or not permitted",
        )
    )


def parse_prefer(value: str | None) -> int | None:
    """Seconds to hold a create for ``Prefer: wait[=N]``; ``None`` without the header."""
    if value is None:
        return None
    match = _PREFER_RE.match(value.strip())
    if match is None:
        detail = "Invalid Prefer header: expected 'wait' or 'wait=N' with N from 1 to 60"
        raise ApiError(problem(400, detail, title="Invalid Prefer header"))
    # The spec's pattern also admits 61-99; the real API never holds longer than 60 s.
    return min(int(match.group(2)), 60) if match.group(2) else 60


def parse_cancel_after(value: str | None) -> float | None:
    """Seconds from a ``Cancel-After`` header (``30``, ``30s``, ``5m``, ``1h30m45s``)."""
    if value is None:
        return None
    text = value.strip()
    match = _CANCEL_AFTER_RE.match(text) if len(text) <= 32 else None
    if not text or match is None:
        raise _bad_cancel_after("Invalid Cancel-After header: expected e.g. 30, 30s, 5m, 1h30m")
    if match.group("bare") is not None:
        seconds = float(match.group("bare"))
    else:
        seconds = (
            int(match.group("h") or 0) * 3600
            + int(match.group("m") or 0) * 60
            + float(match.group("s") or 0)
        )
    if seconds < 5:
        raise _bad_cancel_after("Cancel-After must be at least 5 seconds")
    if seconds > MAX_CANCEL_AFTER:
        raise _bad_cancel_after(f"Cancel-After must be at most {MAX_CANCEL_AFTER} seconds")
    return seconds


def _bad_cancel_after(detail: str) -> ApiError:
    return ApiError(problem(400, detail, title="Invalid Cancel-After"))


def _accessible(ctx: Context, model: Model | None) -> Model | None:
    if model is None:
        return None
    if model.visibility == "private" and model.owner != ctx.store.account["username"]:
        return None
    return model


async def _create(
    request: web.Request, schema: JSON, resolve: Callable[[Context, JSON], _Target]
) -> web.Response:
    ctx = request.app[CTX]
    wait = parse_prefer(request.headers.get("Prefer"))
    cancel_after = parse_cancel_after(request.headers.get("Cancel-After"))
    body = await read_object(request, schema)
    target = resolve(ctx, body)
    version = target.version
    schema_doc = version.openapi_schema if version is not None else None
    inputs = input_schema(schema_doc)
    if inputs is not None:
        errors = validate(body["input"], inputs, path="input", document=schema_doc)
        if errors:
            raise ApiError(invalid_fields_response(errors))
    model = target.model
    now = ctx.now_ns()
    prediction = FakePrediction(
        id=ctx.store.ids.new_id(),
        model=target.reported_model,
        version=target.reported_version,
        version_id=version.id if version is not None else None,
        input=body["input"],
        created_ns=now,
        kind=model.kind,
        deployment=target.deployment,
        webhook=body.get("webhook"),
        webhook_events_filter=body.get("webhook_events_filter"),
        stream_requested=bool(body.get("stream")),
        stream_kind="file" if model.kind == "image" else "text",
        sync=wait is not None,
        behaviour=ctx.behaviour_for(model),
    )
    if cancel_after is not None:
        prediction.deadline_ns = now + int(cancel_after * NS)
    hits = before_start(ctx.scripts, prediction)
    ctx.store.add_prediction(prediction)
    model.run_count += 1
    ctx.runner.start(prediction)
    await apply_scripts(ctx.runner, prediction, hits)
    headers: dict[str, str] = {}
    status = 201
    if wait is not None:
        await ctx.runner.wait(prediction, wait)
        headers["Preference-Applied"] = request.headers["Prefer"].strip()
        if not prediction.done:
            status = ctx.options.prefer_wait_incomplete_status
    return json_response(prediction.to_json(ctx.origin), status, headers)


def _resolve_version_string(ctx: Context, body: JSON) -> _Target:
    ref: str = body["version"]
    if ":" in ref:
        name, _, version_id = ref.partition(":")
        model = _accessible(ctx, ctx.store.get_model(name))
        version = ctx.store.get_version(version_id)
        if model is None or version is None or version.model != model.full_name:
            raise invalid_version()
        return _Target(model, version, model.full_name, version.id)
    if "/" in ref:
        model = _accessible(ctx, ctx.store.get_model(ref))
        if model is None or not model.is_official:
            raise invalid_version()
        version = model.latest_version
        reported = model.prediction_version or (version.id if version else "hidden")
        return _Target(model, version, model.full_name, reported)
    version = ctx.store.get_version(ref)
    model = _accessible(ctx, ctx.store.get_model(version.model)) if version else None
    if version is None or model is None:
        raise invalid_version()
    return _Target(model, version, model.full_name, version.id)


async def create_prediction(request: web.Request) -> web.Response:
    """POST /v1/predictions [predictions.create]"""
    return await _create(request, VERSION_PREDICTION_BODY, _resolve_version_string)


async def create_model_prediction(request: web.Request) -> web.Response:
    """POST /v1/models/{owner}/{name}/predictions [models.predictions.create]"""
    owner, name = request.match_info["owner"], request.match_info["name"]

    def resolve(ctx: Context, body: JSON) -> _Target:
        model = ctx.model_or_404(owner, name)
        if not model.is_official or model.latest_version is None:
            raise ApiError(not_found())
        version = model.latest_version
        return _Target(model, version, model.full_name, model.prediction_version or version.id)

    return await _create(request, PREDICTION_BODY, resolve)


async def create_deployment_prediction(request: web.Request) -> web.Response:
    """POST /v1/deployments/{owner}/{name}/predictions [deployments.predictions.create]"""
    full = f"{request.match_info['owner']}/{request.match_info['name']}"

    def resolve(ctx: Context, body: JSON) -> _Target:
        deployment = ctx.store.deployments.get(full)
        if deployment is None:
            raise ApiError(not_found())
        model = ctx.store.get_model(deployment.model)
        version = ctx.store.get_version(deployment.version)
        if model is None or version is None:
            raise invalid_version()
        return _Target(model, version, model.full_name, version.id, deployment=full)

    return await _create(request, PREDICTION_BODY, resolve)


def _time_bound(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise ApiError(problem(400, f"{name} must be an ISO 8601 date-time")) from None


async def list_predictions(request: web.Request) -> web.Response:
    """GET /v1/predictions [predictions.list]"""
    ctx = request.app[CTX]
    source = request.query.get("source")
    if source is not None and source != "web":
        raise ApiError(problem(400, 'source must be "web"'))
    after = _time_bound(request, "created_after")
    before = _time_bound(request, "created_before")
    index = ctx.store.web_predictions_index if source == "web" else ctx.store.predictions_index
    store, origin = ctx.store, ctx.origin
    return ctx.page(
        request,
        index,
        lambda item: store.resolve_prediction(item).to_json(origin),
        lo=key_bound(after, after=True) if after is not None else None,
        hi=key_bound(before, after=False) if before is not None else None,
    )


def object_handlers(
    lookup: Callable[[Context, str], FakePrediction | None], kind: str
) -> tuple[Handler, Handler]:
    """The ``GET /v1/{kind}s/{id}`` and ``POST /v1/{kind}s/{id}/cancel`` handlers."""

    def found(request: web.Request) -> tuple[Context, FakePrediction]:
        ctx = request.app[CTX]
        item = lookup(ctx, request.match_info["id"])
        if item is None:
            raise ApiError(not_found())
        return ctx, item

    async def get(request: web.Request) -> web.Response:
        ctx, item = found(request)
        return json_response(item.to_json(ctx.origin))

    async def cancel(request: web.Request) -> web.Response:
        ctx, item = found(request)
        await ctx.runner.cancel(item)
        return json_response(item.to_json(ctx.origin))

    get.__doc__ = f"GET /v1/{kind}s/{{id}} [{kind}s.get]"
    cancel.__doc__ = f"POST /v1/{kind}s/{{id}}/cancel [{kind}s.cancel]"
    return get, cancel


get_prediction, cancel_prediction = object_handlers(
    lambda ctx, pid: ctx.store.get_prediction(pid) or ctx.store.trainings.get(pid), "prediction"
)


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /v1/streams/{id}: a prediction's SSE stream (a capability URL: no auth needed)."""
    ctx = request.app[CTX]
    prediction = ctx.store.predictions.get(request.match_info["id"])
    if prediction is None or prediction.stream_kind is None:
        raise ApiError(not_found())
    return await serve_stream(request, prediction, ctx.runner)


def routes() -> list[web.RouteDef]:
    """The route table for this module."""
    model = "/v1/models/{owner}/{name}"
    return [
        web.post("/v1/predictions", create_prediction),
        web.get("/v1/predictions", list_predictions),
        web.get("/v1/predictions/{id}", get_prediction),
        web.post("/v1/predictions/{id}/cancel", cancel_prediction),
        web.post(f"{model}/predictions", create_model_prediction),
        web.post("/v1/deployments/{owner}/{name}/predictions", create_deployment_prediction),
        web.get("/v1/streams/{id}", stream),
    ]
