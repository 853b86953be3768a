"""``/models``: the catalogue, your own models, versions, examples, README, official runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Unpack, cast

from .._checks import body as check_body
from .._checks import url as check_url
from .._core.http import path
from .._core.options import OPTION_NAMES, RequestOptionsDict
from .._core.response import decode
from .._literals import ModelSortBy, SortDirection, Visibility, WebhookEvent
from ..exceptions import InvalidArgumentError
from ..models import Model, Prediction, Version
from ..pagination import AsyncPaginator
from ._base import InputPreparer, Resource, create_request

_SORT_BY = ("model_created_at", "latest_version_created_at")
_SORT_DIRECTION = ("asc", "desc")
_VISIBILITY = ("public", "private")
_UPDATABLE = ("description", "readme", "github_url", "paper_url", "weights_url", "license_url")


class ModelChanges(RequestOptionsDict, total=False):
    """What ``models.update`` may change (and the request option keywords)."""

    description: str
    readme: str
    github_url: str
    paper_url: str
    weights_url: str
    license_url: str


class Versions(Resource):
    """``/models/{owner}/{name}/versions``."""

    __slots__ = ()

    def list(
        self, model: str, *, cursor: str | None = None, **options: Unpack[RequestOptionsDict]
    ) -> AsyncPaginator[Version]:
        """The model's versions, newest first."""
        owner, name = check_url.model_ref(model)
        return AsyncPaginator(
            self._via(options), Version, path("models", owner, name, "versions"), cursor=cursor
        )

    async def get(
        self, model: str, version_id: str, **options: Unpack[RequestOptionsDict]
    ) -> Version:
        """One version of a model."""
        owner, name = check_url.model_ref(model)
        vid = check_url.require_id(version_id, "version_id")
        return await self._get(path("models", owner, name, "versions", vid), Version, options)

    async def delete(
        self, model: str, version_id: str, **options: Unpack[RequestOptionsDict]
    ) -> None:
        """Delete a version of your own private model (asynchronous on the server: 202)."""
        owner, name = check_url.model_ref(model)
        vid = check_url.require_id(version_id, "version_id")
        await self._via(options).request("DELETE", path("models", owner, name, "versions", vid))


class Examples(Resource):
    """``/models/{owner}/{name}/examples``."""

    __slots__ = ()

    def list(
        self, model: str, *, cursor: str | None = None, **options: Unpack[RequestOptionsDict]
    ) -> AsyncPaginator[Prediction]:
        """Example predictions the model's author picked."""
        owner, name = check_url.model_ref(model)
        return AsyncPaginator(
            self._via(options), Prediction, path("models", owner, name, "examples"), cursor=cursor
        )


class Readme(Resource):
    """``/models/{owner}/{name}/readme``."""

    __slots__ = ()

    async def get(self, model: str, **options: Unpack[RequestOptionsDict]) -> str:
        """The model's README as Markdown text."""
        owner, name = check_url.model_ref(model)
        response = await self._via(options).request(
            "GET", path("models", owner, name, "readme"), headers={"Accept": "text/plain"}
        )
        return response.text()


class ModelPredictions(Resource):
    """``POST /models/{owner}/{name}/predictions``: run an official model by name."""

    __slots__ = ()

    async def create(
        self,
        model: str,
        *,
        input: Mapping[str, Any],
        webhook: str | None = None,
        webhook_events_filter: Iterable[WebhookEvent] | None = None,
        stream: bool | None = None,
        wait: bool | int | None = None,
        cancel_after: float | timedelta | str | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Prediction:
        """Create a prediction on the latest version of an official model."""
        owner, name = check_url.model_ref(model)
        return decode(
            await create_request(
                self._via(options),
                path("models", owner, name, "predictions"),
                {"input": check_body.check_input(input)},
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
                stream=stream,
                wait=wait,
                cancel_after=cancel_after,
                prepare=self._prepare,
            ),
            Prediction,
        )


class Models(Resource):
    """Models: list and search the catalogue, create and manage your own."""

    __slots__ = ("examples", "predictions", "readme", "versions")

    def __init__(self, http: Any, prepare: InputPreparer | None = None) -> None:
        super().__init__(http)
        self.versions = Versions(http)
        self.examples = Examples(http)
        self.readme = Readme(http)
        self.predictions = ModelPredictions(http, prepare)

    def list(
        self,
        *,
        sort_by: ModelSortBy | None = None,
        sort_direction: SortDirection | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> AsyncPaginator[Model]:
        """Public models (``GET /models``)."""
        params: dict[str, str] = {}
        if sort_by is not None:
            if sort_by not in _SORT_BY:
                raise InvalidArgumentError(f"sort_by must be one of {_SORT_BY}, got {sort_by!r}")
            params["sort_by"] = sort_by
        if sort_direction is not None:
            if sort_direction not in _SORT_DIRECTION:
                raise InvalidArgumentError(
                    f"sort_direction must be one of {_SORT_DIRECTION}, got {sort_direction!r}"
                )
            params["sort_direction"] = sort_direction
        return AsyncPaginator(self._via(options), Model, "models", params=params, cursor=cursor)

    def search(
        self, query: str, *, cursor: str | None = None, **options: Unpack[RequestOptionsDict]
    ) -> AsyncPaginator[Model]:
        """Search public models (``QUERY /models`` with the query text as the body)."""
        check_url.query_text(query, "query")
        return AsyncPaginator(
            self._via(options),
            Model,
            "models",
            method="QUERY",
            content=query.encode(),
            headers={"Content-Type": "text/plain"},
            cursor=cursor,
        )

    async def get(self, model: str, **options: Unpack[RequestOptionsDict]) -> Model:
        """One model by ``"owner/name"``."""
        owner, name = check_url.model_ref(model)
        return await self._get(path("models", owner, name), Model, options)

    async def create(
        self,
        owner: str,
        name: str,
        *,
        visibility: Visibility,
        hardware: str,
        description: str | None = None,
        github_url: str | None = None,
        paper_url: str | None = None,
        license_url: str | None = None,
        cover_image_url: str | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Model:
        """Create a model owned by ``owner`` (your account or one of your organisations)."""
        check_url.model_ref(f"{owner}/{name}")
        if visibility not in _VISIBILITY:
            raise InvalidArgumentError(
                f"visibility must be 'public' or 'private', got {visibility!r}"
            )
        if not isinstance(hardware, str) or not hardware:
            raise InvalidArgumentError("hardware must be a SKU such as 'cpu' or 'gpu-t4'")
        body: dict[str, Any] = {
            "owner": owner,
            "name": name,
            "visibility": visibility,
            "hardware": hardware,
        }
        optional = {
            "description": description,
            "github_url": github_url,
            "paper_url": paper_url,
            "license_url": license_url,
            "cover_image_url": cover_image_url,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return await self._send_json("POST", "models", body, Model, options)

    async def update(self, model: str, **changes: Unpack[ModelChanges]) -> Model:
        """Change metadata of your model: any of description, readme, github_url,
        paper_url, weights_url, license_url (``PATCH``); and the request option keywords."""
        owner, name = check_url.model_ref(model)
        fields: dict[str, object] = dict(changes)
        options = cast(RequestOptionsDict, {k: fields.pop(k) for k in OPTION_NAMES & set(fields)})
        changes = cast(ModelChanges, fields)
        unknown = sorted(set(changes) - set(_UPDATABLE))
        if unknown:
            raise TypeError(f"unknown model fields {unknown}; updatable: {list(_UPDATABLE)}")
        if not changes:
            raise InvalidArgumentError("nothing to update: pass at least one field")
        for key, value in changes.items():
            if not isinstance(value, str):
                raise TypeError(f"{key} must be a string, got {type(value).__name__}")
        return await self._send_json("PATCH", path("models", owner, name), changes, Model, options)

    async def delete(self, model: str, **options: Unpack[RequestOptionsDict]) -> None:
        """Delete your private model that has no versions."""
        owner, name = check_url.model_ref(model)
        await self._via(options).request("DELETE", path("models", owner, name))
