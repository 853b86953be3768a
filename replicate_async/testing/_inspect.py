"""The opt-in, read-only JSON view of the request log and webhook deliveries
(``inspect_endpoint=True``), for tests that drive the fake from another process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._log import RecordedRequest
from ._util import json_response
from ._webhooks import WebhookDelivery

__all__ = ["routes"]


def _delivery(item: WebhookDelivery) -> dict[str, Any]:
    return {
        "prediction_id": item.prediction_id,
        "event": item.event,
        "url": item.url,
        "webhook_id": item.webhook_id,
        "timestamp": item.timestamp,
        "attempt": item.attempt,
        "status": item.status,
        "error": item.error,
        "body": item.body.decode("utf-8", "replace"),
    }


def routes(
    log: Callable[[], list[RecordedRequest]], deliveries: Callable[[], list[WebhookDelivery]]
) -> list[web.RouteDef]:
    """``GET /_fake/requests`` (the log, credentials redacted; ``?since=N`` skips the
    first N) and ``GET /_fake/webhooks`` (delivery attempts). Never recorded themselves."""

    def since(request: web.Request) -> int:
        try:
            return max(0, int(request.query.get("since", "0")))
        except ValueError:
            return 0

    async def requests(request: web.Request) -> web.Response:
        return json_response([r.to_json() for r in log()[since(request) :]])

    async def webhooks(request: web.Request) -> web.Response:
        return json_response([_delivery(d) for d in deliveries()[since(request) :]])

    return [web.get("/_fake/requests", requests), web.get("/_fake/webhooks", webhooks)]
