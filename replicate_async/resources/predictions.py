"""``/predictions``: create, get, list, cancel (``wait``, ``stream`` and ``run`` are
workflows, added on top by the client)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Unpack

from .._checks import body as check_body
from .._checks import url as check_url
from .._core.http import path
from .._core.options import RequestOptionsDict
from .._core.response import decode
from .._literals import PredictionSource, WebhookEvent
from ..exceptions import InvalidArgumentError
from ..models import Prediction
from ..pagination import AsyncPaginator
from ._base import Resource, create_request


class Predictions(Resource):
    """Predictions: runs of a model version on an input."""

    __slots__ = ()

    async def create(
        self,
        *,
        version: str,
        input: Mapping[str, Any],
        webhook: str | None = None,
        webhook_events_filter: Iterable[WebhookEvent] | None = None,
        stream: bool | None = None,
        wait: bool | int | None = None,
        cancel_after: float | timedelta | str | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Prediction:
        """Create a prediction (``POST /predictions``).

        ``version`` is a version id, ``"owner/name:version_id"``, or ``"owner/name"`` for an
        official model. ``wait=True`` (or 1-60 seconds) asks the server to hold the request
        until the prediction finishes: it may still come back unfinished. ``cancel_after``
        (seconds, timedelta or ``"5m"``; at least 5 s) makes the server cancel it then.
        """
        body: dict[str, Any] = {
            "version": check_url.version_ref(version),
            "input": check_body.check_input(input),
        }
        return decode(
            await create_request(
                self._via(options),
                "predictions",
                body,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
                stream=stream,
                wait=wait,
                cancel_after=cancel_after,
                prepare=self._prepare,
            ),
            Prediction,
        )

    async def get(self, prediction_id: str, **options: Unpack[RequestOptionsDict]) -> Prediction:
        """Fetch a prediction by id (``GET /predictions/{id}``)."""
        # The request's own coroutine, awaited here: polls are the most frequent call.
        pid = check_url.require_id(prediction_id, "prediction_id")
        return decode(await self._via(options).request("GET", path("predictions", pid)), Prediction)

    async def cancel(self, prediction_id: str, **options: Unpack[RequestOptionsDict]) -> Prediction:
        """Cancel a prediction (``POST /predictions/{id}/cancel``); safe to repeat."""
        pid = check_url.require_id(prediction_id, "prediction_id")
        response = await self._via(options).request(
            "POST", path("predictions", pid, "cancel"), idempotent=True
        )
        return decode(response, Prediction)

    def list(
        self,
        *,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        source: PredictionSource | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> AsyncPaginator[Prediction]:
        """All predictions of the account, newest first (``GET /predictions``)."""
        params: dict[str, str] = {}
        if created_after is not None:
            params["created_after"] = check_url.timestamp(created_after, "created_after")
        if created_before is not None:
            params["created_before"] = check_url.timestamp(created_before, "created_before")
        if source is not None:
            if source != "web":
                raise InvalidArgumentError("source can only be 'web'")
            params["source"] = source
        return AsyncPaginator(
            self._via(options), Prediction, "predictions", params=params, cursor=cursor
        )
