"""``/predictions``: create, get, list, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from .. import _validate as check
from .._config import PollPolicy
from .._http import path
from .._run import stream_events
from .._sse import ServerSentEvent
from ..exceptions import StreamError
from ..models import Prediction
from ..pagination import AsyncPaginator
from ._base import Resource, _decode, create_prediction, wait_for


class Predictions(Resource):
    """Predictions: runs of a model version on an input."""

    __slots__ = ()

    async def create(
        self,
        *,
        version: str,
        input: Mapping[str, Any],
        webhook: str | None = None,
        webhook_events_filter: Iterable[str] | None = None,
        stream: bool | None = None,
        wait: bool | int | None = None,
        cancel_after: float | timedelta | str | None = None,
    ) -> Prediction:
        """Create a prediction (``POST /predictions``).

        ``version`` is a version id, ``"owner/name:version_id"``, or ``"owner/name"`` for an
        official model. ``wait=True`` (or 1-60 seconds) asks the server to hold the request
        until the prediction finishes: it may still come back unfinished. ``cancel_after``
        (seconds, timedelta or ``"5m"``; at least 5 s) makes the server cancel it then.
        """
        body: dict[str, Any] = {
            "version": check.version_ref(version),
            "input": check.check_input(input),
        }
        return await create_prediction(
            self._http,
            "predictions",
            body,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            stream=stream,
            wait=wait,
            cancel_after=cancel_after,
        )

    async def get(self, prediction_id: str) -> Prediction:
        """Fetch a prediction by id (``GET /predictions/{id}``)."""
        return await self._get(
            path("predictions", check.require_id(prediction_id, "prediction_id")), Prediction
        )

    async def cancel(self, prediction_id: str) -> Prediction:
        """Cancel a prediction (``POST /predictions/{id}/cancel``); safe to repeat."""
        pid = check.require_id(prediction_id, "prediction_id")
        response = await self._http.request(
            "POST", path("predictions", pid, "cancel"), idempotent=True
        )
        return _decode(response, Prediction)

    def list(
        self,
        *,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        source: str | None = None,
        cursor: str | None = None,
    ) -> AsyncPaginator[Prediction]:
        """All predictions of the account, newest first (``GET /predictions``)."""
        params: dict[str, str] = {}
        if created_after is not None:
            params["created_after"] = check.timestamp(created_after, "created_after")
        if created_before is not None:
            params["created_before"] = check.timestamp(created_before, "created_before")
        if source is not None:
            if source != "web":
                raise ValueError("source can only be 'web'")
            params["source"] = source
        return AsyncPaginator(self._http, Prediction, "predictions", params=params, cursor=cursor)

    async def wait(
        self,
        prediction: Prediction | str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        cancel_on_abandon: bool = True,
    ) -> Prediction:
        """Poll until the prediction reaches a terminal status and return it.

        Terminal means ``succeeded``, ``failed``, ``canceled``, ``aborted`` (or an unknown
        status with ``completed_at`` set); check ``.status`` or use
        :meth:`AsyncReplicate.run` to get errors raised. When ``timeout`` passes, or the
        awaiting task is cancelled, the prediction is canceled on the server first
        (``cancel_on_abandon=False`` leaves it running) and
        :class:`~replicate_async.PredictionTimeoutError` / ``CancelledError`` is raised.
        """
        return await wait_for(
            self._http,
            prediction,
            Prediction,
            get=self.get,
            cancel=self.cancel,
            timeout=timeout,
            poll=poll,
            cancel_on_abandon=cancel_on_abandon,
        )

    def stream(
        self,
        prediction: Prediction,
        *,
        idle_timeout: float = 60.0,
        max_reconnects: int = 5,
        raise_on_error: bool = True,
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events (``output``, ``logs``, ``error``, ``done``, and any new type)
        of a prediction whose model streams, resuming dropped connections."""
        url = prediction.urls.stream if prediction.urls is not None else None
        if not url:
            raise StreamError(
                f"prediction {prediction.id} has no stream URL (its model does not stream)"
            )
        return stream_events(
            self._http,
            url,
            idle_timeout=idle_timeout,
            max_reconnects=max_reconnects,
            raise_on_error=raise_on_error,
        )
