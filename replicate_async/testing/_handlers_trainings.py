"""Handlers: trainings (create, list, get, cancel)."""

from __future__ import annotations

from aiohttp import web

from ._body import read_object
from ._context import CTX
from ._handlers_predictions import object_handlers
from ._records import FakePrediction
from ._util import ApiError, json_response, not_found, problem
from ._validation import TRAINING_BODY

__all__ = ["routes"]


async def create_training(request: web.Request) -> web.Response:
    """POST /v1/models/{owner}/{name}/versions/{version_id}/trainings [trainings.create]"""
    ctx = request.app[CTX]
    model = ctx.model_or_404(request.match_info["owner"], request.match_info["name"])
    version = ctx.store.get_version(request.match_info["version_id"])
    if version is None or version.model != model.full_name:
        raise ApiError(not_found())
    body = await read_object(request, TRAINING_BODY)
    destination = ctx.store.get_model(body["destination"])
    if destination is None or destination.owner != ctx.store.account["username"]:
        detail = "The specified training destination does not exist"
        raise ApiError(problem(404, detail))
    training = FakePrediction(
        id=ctx.store.ids.new_id(),
        model=model.full_name,
        version=version.id,
        version_id=version.id,
        input=body["input"],
        created_ns=ctx.now_ns(),
        kind=model.kind,
        is_training=True,
        webhook=body.get("webhook"),
        webhook_events_filter=body.get("webhook_events_filter"),
        destination=destination.full_name,
        behaviour=ctx.training_behaviour_effective(),
    )
    ctx.store.add_training(training)
    ctx.runner.start(training)
    return json_response(training.to_json(ctx.origin), 201)


async def list_trainings(request: web.Request) -> web.Response:
    """GET /v1/trainings [trainings.list]"""
    ctx = request.app[CTX]
    origin = ctx.origin
    return ctx.page(request, ctx.store.trainings_index, lambda t: t.to_json(origin))


get_training, cancel_training = object_handlers(
    lambda ctx, tid: ctx.store.trainings.get(tid), "training"
)


def routes() -> list[web.RouteDef]:
    """The route table for this module."""
    model = "/v1/models/{owner}/{name}"
    return [
        web.post(f"{model}/versions/{{version_id}}/trainings", create_training),
        web.get("/v1/trainings", list_trainings),
        web.get("/v1/trainings/{id}", get_training),
        web.post("/v1/trainings/{id}/cancel", cancel_training),
    ]
