"""``/deployments``: fixed versions on dedicated hardware, and predictions on them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Unpack

from .._checks import body as check_body
from .._checks import url as check_url
from .._core.http import path
from .._core.options import RequestOptionsDict
from .._core.response import decode
from .._literals import WebhookEvent
from ..exceptions import InvalidArgumentError
from ..models import Deployment, Prediction
from ..pagination import AsyncPaginator
from ._base import InputPreparer, Resource, create_request


def _instances(value: Any, what: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if not 0 <= value <= high:
        raise InvalidArgumentError(f"{what} must be between 0 and {high}, got {value}")
    return value


class DeploymentPredictions(Resource):
    """``POST /deployments/{owner}/{name}/predictions``."""

    __slots__ = ()

    async def create(
        self,
        deployment: str,
        *,
        input: Mapping[str, Any],
        webhook: str | None = None,
        webhook_events_filter: Iterable[WebhookEvent] | None = None,
        stream: bool | None = None,
        wait: bool | int | None = None,
        cancel_after: float | timedelta | str | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Prediction:
        """Create a prediction on a deployment (``"owner/name"``)."""
        owner, name = check_url.model_ref(deployment, "deployment")
        return decode(
            await create_request(
                self._via(options),
                path("deployments", owner, name, "predictions"),
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


class Deployments(Resource):
    """Deployments of the account."""

    __slots__ = ("predictions",)

    def __init__(self, http: Any, prepare: InputPreparer | None = None) -> None:
        super().__init__(http)
        self.predictions = DeploymentPredictions(http, prepare)

    def list(
        self, *, cursor: str | None = None, **options: Unpack[RequestOptionsDict]
    ) -> AsyncPaginator[Deployment]:
        """All deployments, newest first."""
        return AsyncPaginator(self._via(options), Deployment, "deployments", cursor=cursor)

    async def get(self, deployment: str, **options: Unpack[RequestOptionsDict]) -> Deployment:
        """One deployment by ``"owner/name"``."""
        owner, name = check_url.model_ref(deployment, "deployment")
        return await self._get(path("deployments", owner, name), Deployment, options)

    async def create(
        self,
        *,
        name: str,
        model: str,
        version: str,
        hardware: str,
        min_instances: int,
        max_instances: int,
        **options: Unpack[RequestOptionsDict],
    ) -> Deployment:
        """Create a deployment of ``model`` at ``version`` on ``hardware``."""
        check_url.model_ref(f"owner/{name}", "name")
        check_url.model_ref(model)
        check_url.require_id(version, "version")
        if not isinstance(hardware, str) or not hardware:
            raise InvalidArgumentError("hardware must be a SKU such as 'gpu-t4'")
        low = _instances(min_instances, "min_instances", 5)
        high = _instances(max_instances, "max_instances", 20)
        if low > high:
            raise InvalidArgumentError("min_instances must not exceed max_instances")
        body = {
            "name": name,
            "model": model,
            "version": version,
            "hardware": hardware,
            "min_instances": low,
            "max_instances": high,
        }
        return await self._send_json("POST", "deployments", body, Deployment, options)

    async def update(
        self,
        deployment: str,
        *,
        version: str | None = None,
        hardware: str | None = None,
        min_instances: int | None = None,
        max_instances: int | None = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Deployment:
        """Change a deployment; any change makes a new release."""
        owner, name = check_url.model_ref(deployment, "deployment")
        body: dict[str, Any] = {}
        if version is not None:
            body["version"] = check_url.require_id(version, "version")
        if hardware is not None:
            body["hardware"] = hardware
        if min_instances is not None:
            body["min_instances"] = _instances(min_instances, "min_instances", 5)
        if max_instances is not None:
            body["max_instances"] = _instances(max_instances, "max_instances", 20)
        if not body:
            raise InvalidArgumentError("nothing to update: pass at least one field")
        return await self._send_json(
            "PATCH", path("deployments", owner, name), body, Deployment, options
        )

    async def delete(self, deployment: str, **options: Unpack[RequestOptionsDict]) -> None:
        """Delete a deployment (only after it has been idle for 15 minutes)."""
        owner, name = check_url.model_ref(deployment, "deployment")
        await self._via(options).request("DELETE", path("deployments", owner, name))
