"""``/trainings`` and ``POST /models/{owner}/{name}/versions/{id}/trainings``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Unpack

from .._checks import body as check_body
from .._checks import url as check_url
from .._core.http import path
from .._core.options import RequestOptionsDict
from .._core.response import decode
from .._literals import WebhookEvent
from ..exceptions import InvalidArgumentError
from ..models import Training
from ..pagination import AsyncPaginator
from ._base import Resource


class Trainings(Resource):
    """Trainings: fine-tuning a model version into a new version of your own model."""

    __slots__ = ()

    async def create(
        self,
        model: str,
        version: str | None = None,
        *,
        destination: str,
        input: Mapping[str, Any],
        webhook: str | None = None,
        webhook_events_filter: Iterable[WebhookEvent] | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Training:
        """Start a training of ``model`` at ``version`` into ``destination`` (``owner/name``).

        ``model`` may also be ``"owner/name:version_id"`` with ``version`` omitted. The
        destination model must already exist and belong to you. Files in ``input``
        (paths, bytes, file objects) are inlined or uploaded, as for predictions.
        """
        owner, name, ref_version = check_url.split_version_ref(model)
        if version is None:
            version = ref_version
        elif ref_version is not None and ref_version != version:
            raise InvalidArgumentError("the version is given twice, with different values")
        if version is None:
            raise InvalidArgumentError(
                "a version is required: pass version= or 'owner/name:version'"
            )
        check_url.require_id(version, "version")
        check_url.model_ref(destination, "destination")
        body: dict[str, Any] = {"destination": destination, "input": check_body.check_input(input)}
        if webhook is not None:
            body["webhook"] = check_body.webhook_url(webhook)
        events = check_body.events_filter(webhook_events_filter, webhook=webhook)
        if events is not None:
            body["webhook_events_filter"] = events
        body["input"] = await self._prepared(body["input"])
        return await self._send_json(
            "POST",
            path("models", owner, name, "versions", version, "trainings"),
            body,
            Training,
            options,
        )

    async def get(self, training_id: str, **options: Unpack[RequestOptionsDict]) -> Training:
        """Fetch a training by id."""
        return await self._get(
            path("trainings", check_url.require_id(training_id, "training_id")), Training, options
        )

    async def cancel(self, training_id: str, **options: Unpack[RequestOptionsDict]) -> Training:
        """Cancel a training; safe to repeat."""
        tid = check_url.require_id(training_id, "training_id")
        response = await self._via(options).request(
            "POST", path("trainings", tid, "cancel"), idempotent=True
        )
        return decode(response, Training)

    def list(
        self, *, cursor: str | None = None, **options: Unpack[RequestOptionsDict]
    ) -> AsyncPaginator[Training]:
        """All trainings of the account, newest first."""
        return AsyncPaginator(self._via(options), Training, "trainings", cursor=cursor)
